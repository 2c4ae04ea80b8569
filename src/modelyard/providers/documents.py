"""Documents (``DocumentPart``) at upstreams that have no document block of the client's kind.

A text document is read as text by every model: its title (when it has one), a blank line, then
its text. A PDF goes as the upstream's own file part when it is inline (base64); a PDF by URL
is refused with a 400, because those upstreams take no document URLs and the gateway does not
fetch on a client's behalf. Whether the target reads PDFs at all is the catalog's
``input_modalities`` (checked before the call, ``services.chat``). A document's citations
setting asks for citations in the answer, which only the Messages API returns: refused.
"""

from __future__ import annotations

from modelyard.core.chat import DocumentPart
from modelyard.core.errors import InvalidRequest, UnsupportedCapability

PDF = "application/pdf"


def document_text(part: DocumentPart) -> str:
    text = part.text or ""
    return f"{part.title}\n\n{text}" if part.title else text


def inline_pdf(part: DocumentPart, param: str, model: str) -> str:
    """The base64 data of a PDF document; raises for what the upstream cannot take."""
    native = part.native or {}
    citations = native.get("citations")
    if isinstance(citations, dict) and citations.get("enabled"):
        raise InvalidRequest(
            f"{param}.citations: only Anthropic's Messages API answers with citations; "
            "remove citations or call a deployment whose targets speak that API",
            param=f"{param}.citations",
            code="unsupported_parameter",
        )
    if part.data is None:
        raise UnsupportedCapability(
            "document URLs (send the PDF as base64 data)", model, param=param
        )
    return part.data
