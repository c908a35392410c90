"""The --only option of the fixture generators: which named cases to make."""


def select_cases(ap, only, cases):
    """The case names in `only` ("a,b"; all of `cases` when empty), in that order; an unknown
    name is an argparse error (`ap.error`) listing the known ones."""
    if not only:
        return list(cases)
    selected = [c.strip() for c in only.split(",") if c.strip()]
    unknown = [c for c in selected if c not in cases]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; known: {list(cases)}")
    return selected
