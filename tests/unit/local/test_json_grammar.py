import json

from llama_cpp.llama_grammar import json_schema_to_gbnf

from modelyard.local.llama_model import _LOOSE_CHAR, _strict_strings

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def test_schema_strings_exclude_control_characters():
    gbnf = json_schema_to_gbnf(json.dumps(SCHEMA))
    # If llama-cpp-python changes its string rule, this fails and the fix must be revisited.
    assert _LOOSE_CHAR in gbnf
    strict = _strict_strings(gbnf)
    char_rule = next(line for line in strict.splitlines() if line.startswith("char ::="))
    assert "\\x00-\\x1F" in char_rule and "\\x7F" in char_rule
