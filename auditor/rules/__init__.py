"""The rule catalogue: each rule is data (id, severity, title, references) plus one function."""

from auditor.rules.base import Hit, Rule, RuleContext
from auditor.rules.catalogue import CATALOGUE, by_id
from auditor.rules.engine import Aggregator, evaluate

__all__ = ["CATALOGUE", "Aggregator", "Hit", "Rule", "RuleContext", "by_id", "evaluate"]
