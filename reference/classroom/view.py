"""The classroom client's window: a thin Tk skin over :class:`~reference.classroom.model.ChatModel`.

Widgets only: the model decides what a line says, what the status bar reads and
which events count; this file turns that into Tk text tags, colours and
buttons.  Network threads never call in here.  The one bridge between them is
:meth:`ChatWindow._tick`, run by ``after()`` on the Tk thread, which drains the
model's queue and draws what it returns.

Keys: Enter sends, Ctrl+Q (or closing the window) quits, Ctrl+R reconnects,
Ctrl+N opens the connect dialog, Ctrl+L toggles the dark theme, Ctrl+plus and
Ctrl+minus change the text size for a projector.

With the server's profiles (``chat-client --profile dm,history``): a "To:" picker left of
the entry chooses everyone or one of the names seen so far (profile dm), and lines the
server replays from before one joined are drawn muted, in italics, marked "(earlier)"
(profile history).
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from tkinter import font as tkfont

from reference.classroom.emoji import PICKER_EMOJI
from reference.classroom.model import (
    ChatLine,
    ChatModel,
    LineKind,
    Theme,
    line_segments,
    parse_connect_form,
)
from reference.classroom.session import ConnectParams

__all__ = ["EVERYONE", "ChatWindow", "ConnectDialog", "EmojiPicker"]

POLL_MS = 40  # how often the Tk loop drains the network queue: quick enough to feel instant
EVERYONE = "everyone"  # the DM picker's "not private" choice


class ChatWindow:
    """The main window: history, entry, emoji button, status bar with Reconnect."""

    def __init__(self, root: tk.Tk, model: ChatModel, *, font_size: int = 12,
                 prefill: ConnectParams | None = None) -> None:
        self.root = root
        self.model = model
        self.prefill = prefill
        self.closed = False
        self._dialog: ConnectDialog | None = None
        self._picker: EmojiPicker | None = None
        self._shown_status = ""
        self.font = tkfont.nametofont("TkTextFont").copy()
        self.font.configure(size=font_size)
        self.bold = self.font.copy()
        self.bold.configure(weight="bold")
        self.italic = self.font.copy()
        self.italic.configure(slant="italic")
        self.emoji_font = _emoji_font(root, self.font)
        self.dark = tk.BooleanVar(root, value=model.theme_name == "dark")

        root.title(model.title)
        root.geometry("720x480")
        root.minsize(420, 260)
        root.protocol("WM_DELETE_WINDOW", self.close)
        self._build_menu()
        self.status_bar = tk.Frame(root)
        self.status_bar.pack(side="bottom", fill="x")
        # The button is packed first and the label asks for no width of its own (width=1):
        # pack hands out space in packing order, so a long error in the status text
        # would otherwise push Reconnect off the bar just when it is needed.
        self.reconnect_button = tk.Button(self.status_bar, text="Reconnect", command=self.reconnect,
                                          font=self.font)
        self.reconnect_button.pack(side="right", padx=4, pady=2)
        self.status_label = tk.Label(self.status_bar, anchor="w", font=self.font, width=1)
        self.status_label.pack(side="left", fill="x", expand=True, padx=6, pady=2)

        self.input_bar = tk.Frame(root)
        self.input_bar.pack(side="bottom", fill="x", padx=6, pady=6)
        #: The private-message picker (profile dm only): "To: everyone" or a name seen.
        self.recipient = tk.StringVar(root, value=EVERYONE)
        self.dm_picker: tk.Menubutton | None = None
        self.dm_menu: tk.Menu | None = None
        self._picker_names: list[str] = []
        if model.can_dm:
            self.dm_picker = tk.Menubutton(self.input_bar, text=f"To: {EVERYONE}", font=self.font,
                                           relief="flat", indicatoron=True)
            self.dm_menu = tk.Menu(self.dm_picker, tearoff=False)
            self.dm_picker.configure(menu=self.dm_menu)
            self.dm_picker.pack(side="left", padx=(0, 6))
            self._refresh_picker()
        self.entry = tk.Entry(self.input_bar, font=self.font, relief="flat", highlightthickness=1)
        self.entry.pack(side="left", fill="x", expand=True, ipady=4)
        self.emoji_button = tk.Button(self.input_bar, text="😀", command=self.open_emoji_picker,
                                      font=self.emoji_font, relief="flat")
        self.emoji_button.pack(side="left", padx=(6, 0))
        self.send_button = tk.Button(self.input_bar, text="Send", command=self.send_entry,
                                     font=self.font)
        self.send_button.pack(side="left", padx=(6, 0))

        self.history_frame = tk.Frame(root)
        self.history_frame.pack(side="top", fill="both", expand=True, padx=6, pady=(6, 0))
        self.scrollbar = tk.Scrollbar(self.history_frame)
        self.scrollbar.pack(side="right", fill="y")
        self.history = tk.Text(self.history_frame, wrap="word", state="disabled", font=self.font,
                               relief="flat", padx=8, pady=6, yscrollcommand=self.scrollbar.set)
        self.history.pack(side="left", fill="both", expand=True)
        self.scrollbar.configure(command=self.history.yview)

        self.entry.bind("<Return>", self._on_return)
        self.entry.bind("<KP_Enter>", self._on_return)
        for sequence, action in (("<Control-q>", self.close), ("<Control-r>", self.reconnect),
                                 ("<Control-n>", self.open_connect_dialog),
                                 ("<Control-l>", self._toggle_theme_key),
                                 ("<Control-plus>", lambda: self.zoom(+1)),
                                 ("<Control-equal>", lambda: self.zoom(+1)),
                                 ("<Control-minus>", lambda: self.zoom(-1))):
            root.bind_all(sequence, _ignore_event(action))
        self.apply_theme()
        self._refresh_status()
        self.entry.focus_set()
        self._after_id: str | None = root.after(POLL_MS, self._tick)

    def _build_menu(self) -> None:
        menubar = tk.Menu(self.root)
        chat = tk.Menu(menubar, tearoff=False)
        chat.add_command(label="Connect…", accelerator="Ctrl+N", command=self.open_connect_dialog)
        chat.add_command(label="Reconnect", accelerator="Ctrl+R", command=self.reconnect)
        chat.add_command(label="Disconnect", command=self.model.disconnect)
        chat.add_separator()
        chat.add_command(label="Quit", accelerator="Ctrl+Q", command=self.close)
        view = tk.Menu(menubar, tearoff=False)
        view.add_checkbutton(label="Dark theme", accelerator="Ctrl+L", variable=self.dark,
                             command=self._theme_from_menu)
        view.add_command(label="Bigger text", accelerator="Ctrl++", command=lambda: self.zoom(+1))
        view.add_command(label="Smaller text", accelerator="Ctrl+-", command=lambda: self.zoom(-1))
        menubar.add_cascade(label="Chat", menu=chat)
        menubar.add_cascade(label="View", menu=view)
        self.root.configure(menu=menubar)
        self.menubar = menubar
        self.menus = (chat, view)

    # -- user actions ----------------------------------------------------------------
    def send_entry(self) -> bool:
        """Send what the entry holds; clear it only when it was sent."""
        line = self.model.send(self.entry.get())
        if line is None:
            self.root.bell()
            return False
        self.entry.delete(0, "end")
        self._draw(line)
        return True

    def reconnect(self) -> None:
        if self.model.can_reconnect:
            self.model.reconnect()
            self._refresh_status()

    def connect(self, params: ConnectParams) -> None:
        self.model.connect(params)
        self._refresh_status()

    def open_connect_dialog(self) -> ConnectDialog:
        if self._dialog is None or not self._dialog.winfo_exists():
            self._dialog = ConnectDialog(self.root, self.model.params or self.prefill,
                                         on_connect=self.connect, font=self.font)
        self._dialog.lift()
        return self._dialog

    def open_emoji_picker(self) -> EmojiPicker:
        if self._picker is None or not self._picker.winfo_exists():
            self._picker = EmojiPicker(self.root, self.entry, font=self.emoji_font)
            self._picker.apply_theme(self.model.theme)
            x = self.emoji_button.winfo_rootx()
            y = self.emoji_button.winfo_rooty() - self._picker.winfo_reqheight() - 4
            self._picker.geometry(f"+{max(0, x - 200)}+{max(0, y)}")
        self._picker.lift()
        return self._picker

    def choose_recipient(self, name: str | None) -> None:
        """The picker's choice: a name seen in the room, or None for everyone."""
        self.model.choose_recipient(name)
        self.recipient.set(name or EVERYONE)
        if self.dm_picker is not None:
            self.dm_picker.configure(text=f"To: {name or EVERYONE}")

    def _refresh_picker(self) -> None:
        """Offer every name seen so far (called when the model has learnt a new one)."""
        menu = self.dm_menu
        if menu is None or self._picker_names == self.model.names:
            return
        self._picker_names = list(self.model.names)
        menu.delete(0, "end")
        menu.add_radiobutton(label=EVERYONE, variable=self.recipient, value=EVERYONE,
                             command=lambda: self.choose_recipient(None))
        for name in self._picker_names:
            menu.add_radiobutton(label=name, variable=self.recipient, value=name,
                                 command=self._chooser_for(name))

    def _chooser_for(self, name: str) -> Callable[[], None]:
        return lambda: self.choose_recipient(name)

    def toggle_theme(self) -> None:
        self.model.toggle_theme()
        self.dark.set(self.model.theme_name == "dark")
        self.apply_theme()

    def zoom(self, step: int) -> None:
        size = max(8, min(40, int(self.font.cget("size")) + step))
        for font in (self.font, self.bold, self.italic, self.emoji_font):
            font.configure(size=size)
        self._set_hanging_indent()

    def close(self) -> None:
        """Hang up, stop polling, destroy the window (the demo then stops its bots)."""
        if self.closed:
            return
        self.closed = True
        if self._after_id is not None:
            self.root.after_cancel(self._after_id)
            self._after_id = None
        self.model.shutdown()
        self.root.destroy()

    # -- drawing ------------------------------------------------------------------------
    def history_text(self) -> str:
        return self.history.get("1.0", "end-1c")

    def apply_theme(self) -> None:
        t = self.model.theme
        for frame in (self.root, self.history_frame, self.input_bar):
            frame.configure(background=t.background)
        self.history.configure(background=t.background, foreground=t.foreground,
                               insertbackground=t.foreground,
                               selectbackground=t.own_background, selectforeground=t.foreground)
        self.entry.configure(background=t.entry_background, foreground=t.foreground,
                             insertbackground=t.foreground, highlightbackground=t.time,
                             highlightcolor=t.other_sender)
        buttons: list[tk.Button | tk.Menubutton] = [self.emoji_button, self.send_button]
        if self.dm_picker is not None:
            buttons.append(self.dm_picker)
        for button in buttons:
            button.configure(background=t.entry_background, foreground=t.foreground,
                             activebackground=t.own_background, activeforeground=t.foreground,
                             highlightbackground=t.background)
        self.status_bar.configure(background=t.status_background)
        for menu in (self.menubar, *self.menus):
            menu.configure(background=t.status_background, foreground=t.status_foreground,
                           activebackground=t.own_background, activeforeground=t.foreground,
                           selectcolor=t.status_foreground)
        self.status_label.configure(background=t.status_background, foreground=t.status_foreground)
        self.reconnect_button.configure(background=t.status_background, foreground=t.status_foreground,
                                        highlightbackground=t.status_background)
        self.history.tag_configure("time", foreground=t.time)
        self.history.tag_configure("system", foreground=t.system)
        self.history.tag_configure("text", foreground=t.foreground)
        self.history.tag_configure("other_sender", foreground=t.other_sender, font=self.bold)
        self.history.tag_configure("own_sender", foreground=t.own_sender, font=self.bold,
                                   background=t.own_background)
        self.history.tag_configure("own_text", foreground=t.foreground, background=t.own_background)
        self.history.tag_configure("history", foreground=t.history, font=self.italic)
        self.history.tag_configure("history_sender", foreground=t.history, font=self.italic)
        self.history.tag_configure("private_sender", foreground=t.other_sender, font=self.bold,
                                   background=t.private_background)
        self.history.tag_configure("private_text", foreground=t.foreground,
                                   background=t.private_background)
        self.scrollbar.configure(background=t.entry_background, troughcolor=t.background,
                                 activebackground=t.own_background, highlightbackground=t.background)
        if self._picker is not None and self._picker.winfo_exists():
            self._picker.apply_theme(t)
        self._set_hanging_indent()

    def _set_hanging_indent(self) -> None:
        # Wrapped lines start under the text, not under the time stamp; lmargin2 is
        # read from the tag of a line's first character, which is always "time".
        self.history.tag_configure("time", lmargin2=self.font.measure("00:00:00  "))

    def _draw(self, line: ChatLine) -> None:
        at_bottom = self.history.yview()[1] >= 0.999
        self.history.configure(state="normal")
        for text, tag in line_segments(line):
            self.history.insert("end", text, tag)
        excess = int(self.history.index("end-1c").split(".")[0]) - (self.model.history.maxlen or 0) - 1
        if self.model.history.maxlen and excess > 0:
            self.history.delete("1.0", f"{excess + 1}.0")  # keep the widget as bounded as the model
        self.history.configure(state="disabled")
        # Follow new lines only when the reader is at the bottom (or wrote the line):
        # someone scrolled up to reread must not be yanked down by every message.
        if at_bottom or line.kind is LineKind.OWN:
            self.history.see("end")

    def _refresh_status(self) -> None:
        status = self.model.status_text
        if status != self._shown_status:
            self._shown_status = status
            self.status_label.configure(text=status)
            self.root.title(self.model.title)
            self.reconnect_button.configure(state="normal" if self.model.can_reconnect else "disabled")
            self.send_button.configure(state="normal" if self.model.can_send else "disabled")

    def _tick(self) -> None:
        for line in self.model.poll():
            self._draw(line)
        self._refresh_status()
        self._refresh_picker()
        self._after_id = self.root.after(POLL_MS, self._tick)

    def _on_return(self, _event: tk.Event[tk.Entry]) -> str:
        self.send_entry()
        return "break"

    def _theme_from_menu(self) -> None:
        if self.dark.get() != (self.model.theme_name == "dark"):
            self.toggle_theme()

    def _toggle_theme_key(self) -> None:
        self.toggle_theme()


def _ignore_event(action: Callable[[], object]) -> Callable[[tk.Event[tk.Misc]], str]:
    def handler(_event: tk.Event[tk.Misc]) -> str:
        action()
        return "break"
    return handler


def _emoji_font(root: tk.Misc, base: tkfont.Font) -> tkfont.Font:
    """Noto Color Emoji where installed (colour in the picker), else the text font."""
    font = base.copy()
    if "Noto Color Emoji" in tkfont.families(root):
        font.configure(family="Noto Color Emoji")
    return font


class ConnectDialog(tk.Toplevel):
    """Host, port and username; says which field is wrong instead of closing."""

    def __init__(self, master: tk.Tk, prefill: ConnectParams | None,
                 on_connect: Callable[[ConnectParams], None], font: tkfont.Font) -> None:
        super().__init__(master)
        self.title("Connect to a chat server")
        self.transient(master)
        self.resizable(False, False)
        self._on_connect = on_connect
        self.fields: dict[str, tk.Entry] = {}
        defaults = {"host": prefill.host if prefill else "127.0.0.1",
                    "port": str(prefill.port) if prefill else "1234",
                    "name": prefill.name if prefill else ""}
        for row, (key, label) in enumerate((("host", "Host"), ("port", "Port"), ("name", "Username"))):
            tk.Label(self, text=label, font=font).grid(row=row, column=0, sticky="w", padx=8, pady=4)
            entry = tk.Entry(self, font=font, width=24)
            entry.insert(0, defaults[key])
            entry.grid(row=row, column=1, padx=8, pady=4)
            self.fields[key] = entry
        self.error_label = tk.Label(self, text="", fg="#b00020", font=font)
        self.error_label.grid(row=3, column=0, columnspan=2, sticky="w", padx=8)
        buttons = tk.Frame(self)
        buttons.grid(row=4, column=0, columnspan=2, sticky="e", padx=8, pady=8)
        tk.Button(buttons, text="Cancel", command=self.destroy, font=font).pack(side="right")
        tk.Button(buttons, text="Connect", command=self.submit, font=font,
                  default="active").pack(side="right", padx=(0, 6))
        self.bind("<Return>", lambda _e: self.submit())
        self.bind("<KP_Enter>", lambda _e: self.submit())
        self.bind("<Escape>", lambda _e: self.destroy())
        # The username is the field people must fill in: start there unless it is done.
        first = "name" if not defaults["name"] else "host"
        self.fields[first].focus_set()

    def submit(self) -> bool:
        try:
            params = parse_connect_form(self.fields["host"].get(), self.fields["port"].get(),
                                        self.fields["name"].get())
        except ValueError as exc:
            self.error_label.configure(text=str(exc))
            self.bell()
            return False
        self.destroy()
        self._on_connect(params)
        return True


class EmojiPicker(tk.Toplevel):
    """A small grid of emoji; a click puts one at the entry's cursor."""

    COLUMNS = 8

    def __init__(self, master: tk.Tk, entry: tk.Entry, font: tkfont.Font) -> None:
        super().__init__(master)
        self.title("Emoji")
        self.transient(master)
        self.resizable(False, False)
        self.entry = entry
        self.buttons: list[tk.Button] = []
        for index, emoji in enumerate(PICKER_EMOJI):
            button = tk.Button(self, text=emoji, font=font, relief="flat", width=2,
                               command=self._picker_for(emoji))
            button.grid(row=index // self.COLUMNS, column=index % self.COLUMNS, padx=1, pady=1)
            self.buttons.append(button)
        self.bind("<Escape>", lambda _e: self.destroy())

    def apply_theme(self, theme: Theme) -> None:
        self.configure(background=theme.background)
        for button in self.buttons:
            button.configure(background=theme.background, activebackground=theme.own_background,
                             highlightbackground=theme.background)

    def _picker_for(self, emoji: str) -> Callable[[], None]:
        return lambda: self.pick(emoji)

    def pick(self, emoji: str) -> None:
        self.entry.insert("insert", emoji)
        self.entry.focus_set()
        self.destroy()
