"""Standards catalogues: the test items of a named standard that device traffic can evidence.

A lab signs test items of a standard, not rules (issue 17). Each catalogue
(``catalogues/<id>.yaml``) lists a standard's traffic-testable items: clause, title and a
one-line summary in our own words (en/zh), the rules that evidence it and the session steps
it needs. ``model`` holds the plain dataclasses, ``steps`` the session steps a tester
performs, ``catalogue`` reads the files.
"""
