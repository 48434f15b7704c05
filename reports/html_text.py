"""Text helpers for the HTML reports: escaping with control characters made visible, clipping long
text, and embedding data as JSON inside a page.

Control characters (C0 and C1, DEL, a carriage return that does not end a line) become visible
escapes such as `\\x1b`; newlines and tabs are kept. Embedded JSON escapes `<`, `>` and `&`, so
text such as "</script>" in model output cannot end its script block. Renders nothing itself.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

# C0 controls except tab and newline (a CR is kept only as part of CRLF), DEL and the C1 range.
CONTROL = re.compile(r"\r(?!\n)|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# In embedded JSON: what could end or confuse the script block, and characters JSON leaves raw
# that some readers treat as line breaks or controls.
_JSON_UNSAFE = re.compile(r"[<>&\x7f-\x9f\u2028\u2029]")


def visible(text: str) -> str:
    """`text` with control characters replaced by visible escapes (ESC -> `\\x1b`)."""
    return CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def esc(value: Any) -> str:
    """HTML-escaped text (quotes included) with control characters shown as visible escapes."""
    return html.escape(visible(str(value)))


def clip(text: str, limit: int) -> str:
    """`text` cut to about `limit` characters: its start and its end, with the cut said in the middle."""
    if len(text) <= limit:
        return text
    half = limit // 2
    omitted = len(text) - 2 * half
    return f"{text[:half]}\n[… {omitted:,} characters left out here; samples.jsonl has the full text …]\n{text[-half:]}"


def tail(text: str, limit: int) -> str:
    """The last `limit` characters of `text` (a prompt's question is at its end)."""
    if len(text) <= limit:
        return text
    return f"[… {len(text) - limit:,} earlier characters left out …]\n{text[-limit:]}"


def embed_json(data: Any) -> str:
    """JSON safe to place inside <script type="application/json">: no raw `<`, `>`, `&`."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
