from types import SimpleNamespace

from messaging import piping

MAPPING = SimpleNamespace(first_name_field="fname", date_fields=["enrollment_date"])


def test_it_pipes_mapped_fields_and_survey_links():
    context = piping.PipingContext(
        values={"first_name": "Ana", "enrollment_date": "2026-12-01"},
        survey_link="https://r.edu/s/?s=X",
    )
    text = piping.render("Hi [first_name], since [enrollment_date]: [survey-link]", context)
    assert text == "Hi Ana, since 2026-12-01: https://r.edu/s/?s=X"


def test_piped_values_are_not_piped_again():
    context = piping.PipingContext(values={"first_name": "[survey-link]"}, survey_link="SECRET")
    assert piping.render("Hi [first_name]", context) == "Hi [survey-link]"


def test_only_mapped_fields_may_be_piped():
    allowed = piping.allowed_tokens(MAPPING)
    assert {"first_name", "fname", "enrollment_date", "survey-link", "survey-queue-link"} <= allowed
    assert piping.unknown_tokens("Hi [first_name] [dob] [diagnosis]", MAPPING) == [
        "diagnosis",
        "dob",
    ]
    assert piping.unknown_tokens("[first_name]", None) == ["first_name"]
