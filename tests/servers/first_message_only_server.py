"""A server that only looks right for the first message (breaks RELAY-1, RELAY-3, RELAY-4).

After relaying a client's first message it goes back to "waiting for a
username" for that client, as a student's state flag reset in the wrong branch
would: the second message becomes a new name and is not relayed, the third is
relayed under the second's text, and so on.  A one-message smoke test passes.
The flag is tested frame by frame, so it does not matter how the frames arrive:
one per read, or several in one read (the reference server parses those in one
pass, but the student's loop tests the flag before each frame).

    python tests/servers/first_message_only_server.py PORT
"""

from __future__ import annotations

import logging
import sys

from _variant import run

from reference.server import ChatServer, Client


class FirstMessageOnlyServer(ChatServer):
    def _broadcast(self, sender: Client, text: bytes) -> None:
        conn = sender.conn
        if not conn._registered_in:
            # A frame that came in the same read as the message relayed just before it: the
            # reference parsed the whole read as messages, but the defect has made this
            # frame a username.  (Without this, whether the defect shows depended on
            # whether the sender's frames were read one by one or together, i.e. on timing.)
            if not text:
                self._drop(sender, "protocol error: username is empty", logging.WARNING)
                return
            conn._registered_in = True
            conn.name = text.decode()  # UTF-8 already checked, as for any message
            self._on_register(sender, conn.name)
            return
        super()._broadcast(sender, text)
        conn._registered_in = False  # the defect: the next frame is read as a username

    def _on_register(self, client: Client, name: str) -> None:
        if client.fd in self.registered:  # "registered" again by the defect: only renamed
            self.memory_held -= 4 * len(client.name_frame)
            self.registered.pop(client.fd)
            self._unregistered[client.fd] = client
        super()._on_register(client, name)


if __name__ == "__main__":
    sys.exit(run(FirstMessageOnlyServer))
