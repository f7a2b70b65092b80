from pathlib import Path

from policy.rules import RULES

DOCS = Path(__file__).parents[2] / "docs" / "policy.md"


def test_every_rule_id_is_documented():
    text = DOCS.read_text()
    assert [rule for rule in RULES if f"`{rule}`" not in text] == []


def test_rule_ids_are_dotted_and_prefixed_by_their_lane():
    for rule in RULES:
        lane, _, name = rule.partition(".")
        assert lane in {"background", "stateless", "denied"}
        assert name
        assert name == name.lower()
