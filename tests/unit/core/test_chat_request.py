from modelyard.core.chat import (
    ChatRequest,
    DocumentPart,
    ImagePart,
    Message,
    TextPart,
    estimate_prompt_tokens,
)


def _request(*messages: Message) -> ChatRequest:
    return ChatRequest(model="m", messages=list(messages))


def test_estimate_counts_the_text_parts_of_every_message():
    request = _request(
        Message("system", (TextPart("a" * 8),)),
        Message("user", (TextPart("b" * 6), ImagePart("http://x"), TextPart("c" * 6))),
        Message("assistant", ()),
        Message("user", (DocumentPart("text/plain", text="d" * 400),)),
    )
    # documents and images are not counted: 8 + 6 + 6 characters
    assert estimate_prompt_tokens(request) == 20 // 4
    assert estimate_prompt_tokens(request) == sum(len(m.text()) for m in request.messages) // 4


def test_has_pdf_documents_finds_a_pdf_in_any_message():
    text_doc = DocumentPart("text/plain", text="notes")
    pdf = DocumentPart("application/pdf", data="JVBERi0=")
    assert not _request(Message("user", (TextPart("x"), text_doc))).has_pdf_documents()
    assert _request(
        Message("user", (TextPart("x"),)), Message("user", (TextPart("y"), pdf))
    ).has_pdf_documents()
