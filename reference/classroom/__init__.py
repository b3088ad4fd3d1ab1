"""The Tk classroom client: a window over a headless model over one session thread.

``app`` parses the command line and opens the window (``chat-client``); ``view`` is the
thin Tk skin; ``model`` holds the chat as plain data and is tested without a display;
``session`` drives the one codec (:mod:`reference.protocol`) on a background thread;
``demo`` starts the reference server and a few bots for a classroom demo; ``emoji``
holds the picker and the ``:shortcode:`` table.
"""
