"""``python -m bot.prompts``: regenerate the shipped prompt files."""

from __future__ import annotations

from bot.prompts import generate

for path in generate():
    print(path)
