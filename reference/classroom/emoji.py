"""Emoji for the classroom client: ``:shortcodes:`` to type them, a short list to pick from.

Tk renders emoji through fontconfig's fallback (Debian's ``fonts-noto-color-emoji``
gives them colour), and anything an input method or the clipboard puts in the
entry is sent as it is.  A keyboard without an emoji key still needs a way in,
so the client also understands the shortcodes chat users already know
(``:smile:`` -> 😄) and offers a small picker of :data:`PICKER_EMOJI`.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["PICKER_EMOJI", "SHORTCODES", "expand_shortcodes"]

#: Shortcode (without the colons) -> emoji.  The common Slack/GitHub names.
SHORTCODES: Final[dict[str, str]] = {
    "smile": "😄",
    "grin": "😁",
    "joy": "😂",
    "wink": "😉",
    "slightly_smiling_face": "🙂",
    "blush": "😊",
    "heart_eyes": "😍",
    "thinking": "🤔",
    "sunglasses": "😎",
    "cry": "😢",
    "scream": "😱",
    "sleeping": "😴",
    "thumbsup": "👍",
    "+1": "👍",
    "thumbsdown": "👎",
    "-1": "👎",
    "clap": "👏",
    "wave": "👋",
    "raised_hand": "✋",
    "pray": "🙏",
    "muscle": "💪",
    "eyes": "👀",
    "heart": "❤️",
    "fire": "🔥",
    "sparkles": "✨",
    "star": "⭐",
    "tada": "🎉",
    "rocket": "🚀",
    "bulb": "💡",
    "books": "📚",
    "pencil": "✏️",
    "computer": "💻",
    "bug": "🐛",
    "snake": "🐍",
    "coffee": "☕",
    "pizza": "🍕",
    "check": "✅",
    "x": "❌",
    "question": "❓",
    "warning": "⚠️",
    "hourglass": "⏳",
    "100": "💯",
}

#: What the picker shows, in this order: faces first, then hands, then things.
PICKER_EMOJI: Final[tuple[str, ...]] = (
    "😄", "😂", "😉", "🙂", "😍", "🤔", "😎", "😢",
    "😱", "😴", "👍", "👎", "👏", "👋", "🙏", "💪",
    "👀", "❤️", "🔥", "✨", "🎉", "🚀", "💡", "📚",
    "💻", "🐛", "🐍", "☕", "✅", "❌", "❓", "💯",
)

# A shortcode is letters, digits, '_', '+' or '-' between two colons, as in Slack.
_SHORTCODE = re.compile(r":([a-z0-9_+-]+):")


def expand_shortcodes(text: str) -> str:
    """Replace every known ``:name:`` with its emoji; unknown ones stay as typed."""
    return _SHORTCODE.sub(lambda m: SHORTCODES.get(m.group(1), m.group(0)), text)
