"""Which fields a text survey asks, which it refuses and which it skips, each named with why."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging.keywords import STOP_WORDS
from messaging.surveys.fields import (
    LEGACY_VALIDATIONS,
    TEXT_VALIDATIONS,
    SurveyError,
    action_tags,
    clean_label,
    instrument_from_metadata,
)
from tests.messaging.surveys.conftest import instrument_of, row


def test_the_demo_checkin_asks_every_askable_type_in_form_order(checkin):
    assert checkin.label == "Text check-in" and not checkin.repeating
    kinds = {q.kind for q in checkin.questions}
    assert kinds == {
        "descriptive", "yesno", "truefalse", "radio", "dropdown", "checkbox", "text", "notes",
        "slider",
    }  # fmt: skip
    validations = {q.validation for q in checkin.questions if q.kind == "text"}
    assert validations == {
        "", "integer", "number", "number_1dp", "date_mdy", "datetime_mdy", "time", "email",
        "phone", "zipcode",
    }  # fmt: skip
    assert [q.field for q in checkin.questions][:4] == [
        "tc_intro",
        "tc_walked",
        "tc_walk_days",
        "tc_rested",
    ]
    assert [str(s) for s in checkin.refused] == [
        "tc_photo (“Upload a photo of your lunch.”): it asks for a file upload, which cannot be "
        "sent by text"
    ]
    assert [s.field for s in checkin.hidden] == ["tc_channel"]
    assert checkin.question("tc_contact_by").default == "1"
    assert checkin.question("tc_walked").required
    assert not checkin.question("tc_intro").asks
    assert checkin.record_fields == {"first_name"}  # piped into the intro, from the contact form
    assert checkin.warnings == ()


def test_the_diary_repeats(diary):
    assert diary.repeating
    assert [q.field for q in diary.asked] == ["dd_walked", "dd_minutes", "dd_mood", "dd_note"]


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        (row("f", "file"), "it asks for a file upload, which cannot be sent by text"),
        (
            row("f", "file", text_validation_type_or_show_slider_number="signature"),
            "it asks for a signature, which cannot be given by text",
        ),
        (
            row("f", "calc", select_choices_or_calculations="[a] + 1"),
            "it is a calculated field: REDCap works out its value",
        ),
        (row("f", "sql"), "its choices come from a database query (a SQL field)"),
        (row("f", "barcode"), "its field type “barcode” is not one text surveys know"),
        (
            row(
                "f",
                "radio",
                select_choices_or_calculations="1, A | 2, B",
                matrix_group_name="m",
                matrix_ranking="y",
            ),
            "it is in a ranking matrix, whose choices are ranked against each other",
        ),
        (
            row("f", field_annotation="@CALCTEXT(if([a] = 1, 'x', 'y'))"),
            "it uses @CALCTEXT, which text surveys cannot honour (REDCap calculates its value)",
        ),
        (
            row("f", field_annotation="@CALCDATE([d], 7, 'd')"),
            "it uses @CALCDATE, which text surveys cannot honour (REDCap calculates its value)",
        ),
        (
            row("f", field_annotation="@IF([a] = 1, @HIDDEN, '')"),
            "it uses @IF, which text surveys cannot honour (it switches other action tags on "
            "and off by logic)",
        ),
        (
            row("f", text_validation_type_or_show_slider_number="alpha_only"),
            "its validation “alpha_only” is not one text surveys can check",
        ),
        (
            row("f", text_validation_type_or_show_slider_number="ssn"),
            "its validation “ssn” is not one text surveys can check",
        ),
        (
            row("f", select_choices_or_calculations="BIOPORTAL:ICD10"),
            "it searches an ontology (BioPortal) as the participant types",
        ),
        (row("f", "radio"), "it has no choices"),
        (
            row(
                "f",
                "dropdown",
                select_choices_or_calculations="1, A | 2, B",
                **{"field_annotation": "@HIDECHOICE='1,2'"},
            ),
            "every choice is hidden by @HIDECHOICE/@SHOWCHOICE",
        ),
        (
            row("f", branching_logic="sqrt([record_id]) > 2"),
            "its branching logic cannot be read here: The function sqrt() is not supported",
        ),
        (
            row("f", branching_logic="[nowhere] = '1'"),
            "its branching logic cannot be read here: Unknown field: [nowhere].",
        ),
        (
            row("f", branching_logic="[event-name] = 'week_1_arm_1'"),
            "its branching logic cannot be read here: [event-name] is not a field",
        ),
    ],
)
def test_each_refusal_names_the_field_and_its_reason(field, reason):
    instrument = instrument_of(field)
    assert instrument.questions == ()
    [refused] = instrument.refused
    assert refused.field == "f"
    assert refused.reason.startswith(reason)


@pytest.mark.parametrize(
    ("choices", "word"),
    [
        ("1, Keep going | 2, End", "End"),
        ("1, Continue | 2, CANCEL", "CANCEL"),
        ("1, Stay | 2, Quit", "Quit"),
        ("1, Go | 2, stop", "stop"),
        ("1, Yes | 2, Stop texting me", "Stop texting me"),
        ("1, Yes | stop, Halt", "stop"),  # a code a participant may type
    ],
)
def test_a_choice_that_is_a_stop_word_is_refused_with_the_reason(choices, word):
    instrument = instrument_of(row("f", "radio", select_choices_or_calculations=choices))
    [refused] = instrument.refused
    assert refused.reason == (
        f"its choice “{word}” is a STOP word: a participant who typed it would be opted out of "
        "all texts. Rename the choice in REDCap."
    )


@given(st.sampled_from(STOP_WORDS), st.sampled_from(["{}", "{}.", " {} ", "{}!"]))
def test_every_opt_out_word_as_a_choice_label_is_refused(word, shape):
    label = shape.format(word.upper())
    choices = f"1, Fine | 2, {label}"
    instrument = instrument_of(row("f", "checkbox", select_choices_or_calculations=choices))
    assert [s.field for s in instrument.refused] == ["f"]


def test_labels_with_a_stop_word_inside_a_sentence_are_asked():
    choices = "1, I want to stop smoking | 2, Cancelled my plans | 3, The end of the week"
    instrument = instrument_of(row("f", "radio", select_choices_or_calculations=choices))
    assert [q.field for q in instrument.questions] == ["f"]


@pytest.mark.parametrize(
    ("annotation", "tag"),
    [
        ("@HIDDEN", "HIDDEN"),
        ("@HIDDEN-SURVEY", "HIDDEN-SURVEY"),
        ("@READONLY", "READONLY"),
        ("@READONLY-SURVEY @DEFAULT='x'", "READONLY-SURVEY"),
    ],
)
def test_fields_surveys_do_not_show_are_skipped_not_refused(annotation, tag):
    instrument = instrument_of(
        row("f", field_annotation=annotation), row("c", "calc", field_annotation="@HIDDEN")
    )
    assert instrument.refused == ()
    assert [(s.field, s.reason) for s in instrument.hidden][0] == (
        "f",
        f"marked @{tag}, so surveys do not ask it",
    )
    assert instrument.hidden[1].field == "c"  # a hidden calculation is no concern either


@pytest.mark.parametrize("annotation", ["@HIDDEN-FORM", "@HIDDEN-APP", "@READONLY-FORM"])
def test_tags_for_other_places_leave_the_field_asked(annotation):
    assert [q.field for q in instrument_of(row("f", field_annotation=annotation)).questions] == [
        "f"
    ]


def test_the_record_id_on_the_survey_form_is_never_asked():
    instrument = instrument_from_metadata(
        [row("study_id", form="survey"), row("f")], instrument="survey"
    )
    assert [q.field for q in instrument.questions] == ["f"]
    assert [(s.field, s.reason) for s in instrument.hidden] == [
        ("study_id", "the record ID is never asked")
    ]
    assert instrument.record_id_field == "study_id"


@pytest.mark.parametrize("validation", TEXT_VALIDATIONS)
def test_every_text_validation_of_the_subset_is_asked(validation):
    instrument = instrument_of(row("f", text_validation_type_or_show_slider_number=validation))
    assert [q.validation for q in instrument.questions] == [validation]


@pytest.mark.parametrize(("legacy", "today"), sorted(LEGACY_VALIDATIONS.items()))
def test_legacy_validation_names_read_as_todays(legacy, today):
    instrument = instrument_of(row("f", text_validation_type_or_show_slider_number=legacy))
    assert instrument.questions[0].validation == today


def test_whole_number_codes_are_shown_as_themselves_and_others_are_numbered():
    instrument = instrument_of(
        row("a", "radio", select_choices_or_calculations="0, None | 1, Some | -9, Prefer not"),
        row("b", "dropdown", select_choices_or_calculations="A, Apple | B, Banana"),
    )
    a, b = instrument.questions
    assert [(c.number, c.code) for c in a.choices] == [("0", "0"), ("1", "1"), ("-9", "-9")]
    assert [(c.number, c.code) for c in b.choices] == [("1", "A"), ("2", "B")]


def test_hidden_and_shown_choices_follow_the_action_tags():
    choices = "1, A | 2, B | 3, C | 4, D"
    hide = instrument_of(
        row(
            "f",
            "radio",
            select_choices_or_calculations=choices,
            field_annotation="@HIDECHOICE='2, 3'",
        )
    )
    show = instrument_of(
        row(
            "f",
            "checkbox",
            select_choices_or_calculations=choices,
            field_annotation="@HIDECHOICE='1' @SHOWCHOICE='1,4'",
        )
    )
    assert [c.code for c in hide.questions[0].choices] == ["1", "4"]
    assert [c.code for c in show.questions[0].choices] == ["1", "4"]  # SHOWCHOICE wins
    assert show.questions[0].all_codes == ("1", "2", "3", "4")


def test_checkbox_tags_and_text_limits_are_read():
    instrument = instrument_of(
        row(
            "f",
            "checkbox",
            select_choices_or_calculations="1, A | 2, B | 99, None",
            field_annotation="@NONEOFTHEABOVE='99' @MAXCHECKED=2",
        ),
        row("g", "notes", field_annotation='@CHARLIMIT="140"'),
        row("h", field_annotation="@WORDLIMIT='5' @DEFAULT=\"[first_name]\""),
    )
    f, g, h = instrument.questions
    assert (f.exclusive, f.max_checked) == (frozenset({"99"}), 2)
    assert g.char_limit == 140
    assert (h.word_limit, h.default) == (5, "[first_name]")


def test_what_is_asked_differently_from_redcap_is_warned_about():
    instrument = instrument_of(
        row(
            "f",
            "radio",
            label="Pick one, [first_name] [survey-link]",
            select_choices_or_calculations="1, Walk | 2, Info",
            field_annotation="@RANDOMORDER @MAXCHOICE(1=10)",
        ),
        row("first_name", form="contact"),
    )
    assert instrument.warnings == (
        "f: the choice “Info” reads as HELP, so a participant who types it gets the help text; "
        "they can reply 2 instead.",
        "f: @RANDOMORDER is ignored; choices go in REDCap's order.",
        "f: @MAXCHOICE is not checked by text surveys.",
        "f: [survey-link] is not a field of this project (smart variables are not filled in "
        "text surveys), so it is piped as blank.",
    )


def test_a_matrix_row_carries_its_matrix_header():
    instrument = instrument_of(
        row(
            "m1",
            "radio",
            "Walking",
            section_header="How often do you do these?",
            select_choices_or_calculations="1, Never | 2, Often",
            matrix_group_name="freq",
        ),
        row(
            "m2",
            "radio",
            "Running",
            select_choices_or_calculations="1, Never | 2, Often",
            matrix_group_name="freq",
        ),  # fmt: skip
    )
    assert [q.label for q in instrument.questions] == [
        "How often do you do these?\nWalking",
        "How often do you do these?\nRunning",
    ]


def test_labels_become_plain_gsm_text():
    assert clean_label("<b>How’s</b> your&nbsp;day?<br>Be “honest” – it’s fine…") == (
        "How's your day?\nBe \"honest\" - it's fine..."
    )
    assert clean_label("<p>One</p>\r\n<p>  Two   words </p>") == "One\nTwo words"


def test_action_tags_are_read_with_their_arguments_and_nothing_inside_them():
    annotation = (
        "Ask nurse@CLINIC.ORG first. @DEFAULT='@HIDDEN, really' @IF([a] = 1, @HIDDEN, @READONLY)"
        ' @MAXCHECKED=3 @CHARLIMIT="10" @NOW'
    )
    assert action_tags(annotation) == {
        "DEFAULT": "@HIDDEN, really",
        "IF": "[a] = 1, @HIDDEN, @READONLY",
        "MAXCHECKED": "3",
        "CHARLIMIT": "10",
        "NOW": "",
    }


def test_branching_may_name_fields_of_other_forms_and_form_status_fields():
    instrument = instrument_of(
        row("f", branching_logic="[contact_complete] = '2' and [record_id] <> ''"),
    )
    assert instrument.questions[0].branching.fields == {"contact_complete", "record_id"}


def test_branching_in_a_longitudinal_project_must_name_its_events():
    field = row("f", branching_logic="[week_9_arm_1][record_id] <> ''")
    instrument = instrument_from_metadata(
        [row("record_id", form="contact"), field], instrument="survey", events={"week_1_arm_1"}
    )
    assert instrument.refused[0].reason.endswith("Unknown event: [week_9_arm_1].")


def test_an_unknown_instrument_or_an_empty_dictionary_is_said_in_words():
    with pytest.raises(SurveyError, match="“nope” is not an instrument of this project's data"):
        instrument_from_metadata([row("record_id")], instrument="nope")
    with pytest.raises(SurveyError, match="empty data dictionary"):
        instrument_from_metadata([], instrument="survey")
