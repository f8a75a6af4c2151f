"""Extraction: turn a transmission's raw parts into ``Field`` values, one module per carrier."""

from auditor.extract.http import extract_http

__all__ = ["extract_http"]
