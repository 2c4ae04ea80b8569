"""The OpenAI Responses API served: request decoding, items ↔ core messages, the ``Response``
object and its streaming event sequence.

Shapes follow the official OpenAPI description, ``openai/openai-openapi`` at commit
``SPEC_COMMIT`` (``openapi.json``, components ``CreateResponse``, ``Response``, ``InputItem``,
``OutputItem`` and the ``response.*`` stream events).
"""

SPEC_COMMIT = "f85dbe223d40e1a31cba812ab2d755c7e98a92a3"
