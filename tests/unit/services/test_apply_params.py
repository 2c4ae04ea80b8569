from modelyard.core.chat import ChatRequest, Message, TextPart
from modelyard.services.params import apply_params


def test_operator_params_override_and_extend():
    req = ChatRequest("d", [Message("user", (TextPart("x"),))], temperature=1.0, extra={"a": 1})
    out = apply_params(req, {"temperature": 0.1, "presence_penalty": 0.5})
    assert out.temperature == 0.1
    assert out.extra == {"a": 1, "presence_penalty": 0.5}
    assert req.temperature == 1.0  # the client's request object is untouched
    assert apply_params(req, {}) is req
