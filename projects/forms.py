import zoneinfo

from django import forms
from django.core.exceptions import ValidationError

# Defined in billing (the app every other may import) so that billing's views share them;
# the views of projects, messaging and portal import them from here.
from billing.forms import error_text as error_text
from billing.forms import form_apply_errors as form_apply_errors
from projects.models import Membership, Project, RedcapInstance
from projects.services.mapping import CODED_TYPES, Dictionary

COMMON_TIME_ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Puerto_Rico",
    "UTC",
]


def time_zone_choices() -> list[tuple[str, str]]:
    """Every IANA time zone, the common US ones first."""
    others = sorted(zoneinfo.available_timezones() - set(COMMON_TIME_ZONES))
    return [(tz, tz.replace("_", " ")) for tz in COMMON_TIME_ZONES + others]


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail address")
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.EDITOR)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


class RedcapLinkForm(forms.Form):
    redcap_instance = forms.ModelChoiceField(
        label="REDCap server",
        queryset=RedcapInstance.objects.filter(is_active=True),
        error_messages={
            "invalid_choice": "That REDCap server is not on the administrators' list. "
            "Choose one from the list."
        },
    )
    token = forms.CharField(
        label="API token",
        max_length=64,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="From REDCap: API → your token for this project (32 characters). "
        "It is stored encrypted and shown only as its last 4 characters.",
    )

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.project = project
        self.fields["redcap_instance"].initial = project.redcap_instance_id

    def clean_redcap_instance(self):
        instance = self.cleaned_data["redcap_instance"]
        if instance.pk != self.project.redcap_instance_id:
            raise forms.ValidationError(
                f"This project was approved for REDCap project {self.project.redcap_project_id} on "
                f"{self.project.redcap_instance}. Link a token from that server."
            )
        return instance


class FieldMappingForm(forms.Form):
    phone_field = forms.ChoiceField(label="Mobile phone field")
    consent_field = forms.ChoiceField(label="SMS-consent field")
    consent_value = forms.CharField(
        label="Value that means “consented”",
        max_length=100,
        initial="1",
        help_text="The coded value, e.g. 1 for “1, Yes”.",
    )
    time_zone_field = forms.ChoiceField(
        label="Time-zone field",
        required=False,
        help_text="A text field holding IANA names such as America/Chicago.",
    )
    first_name_field = forms.ChoiceField(
        label="First-name field",
        required=False,
        help_text="Lets messages say [first_name].",
    )
    optout_field = forms.ChoiceField(
        label="Opt-out field",
        required=False,
        help_text="Records marked opted out here are never texted; when a participant texts "
        "STOP, StudyText marks it in REDCap.",
    )
    optout_value = forms.CharField(
        label="Value that means “opted out”",
        max_length=100,
        required=False,
        initial="1",
        help_text="The coded value; for a checkbox, the code of its “opted out” option.",
    )
    date_fields = forms.MultipleChoiceField(
        label="Date fields for schedules",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Messages can be scheduled relative to these dates.",
    )
    withdrawn_logic = forms.CharField(
        label="“Withdrawn” logic",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="REDCap logic, e.g. [withdrawn] = '1'. Matching records are never texted.",
    )
    event = forms.ChoiceField(label="Event holding these fields", required=False)
    time_zone = forms.ChoiceField(
        label="Project time zone",
        choices=time_zone_choices,
        help_text="Used for participants whose record has no time zone.",
    )
    phone_region = forms.CharField(
        label="Phone region",
        max_length=2,
        initial="US",
        help_text="Two-letter region for numbers written without +country code.",
    )

    def __init__(self, *args, dictionary: Dictionary, **kwargs):
        super().__init__(*args, **kwargs)
        blank = [("", "— none —")]
        choose = [("", "Choose a field")]
        all_fields = dictionary.choices()
        # The same kinds of field the service accepts (mapping.FIELD_KINDS).
        consent = sorted(  # coded fields first, then text fields
            dictionary.choices_for("consent_field"),
            key=lambda c: dictionary.fields[c[0]]["field_type"] not in CODED_TYPES,
        )
        self.fields["phone_field"].choices = choose + dictionary.choices_for("phone_field")
        self.fields["consent_field"].choices = choose + consent
        self.fields["time_zone_field"].choices = blank + dictionary.choices_for("time_zone_field")
        self.fields["first_name_field"].choices = blank + dictionary.choices_for("first_name_field")
        self.fields["optout_field"].choices = blank + dictionary.choices_for("optout_field")
        self.fields["date_fields"].choices = dictionary.choices_for("date_fields")
        if dictionary.is_longitudinal:
            self.fields["event"].required = True
            self.fields["event"].choices = [("", "Choose an event")] + [
                (e["unique_event_name"], e["event_name"]) for e in dictionary.events
            ]
        else:
            del self.fields["event"]
        self.all_field_names = {name for name, _ in all_fields}


class MoveAccountForm(forms.Form):
    account = forms.ModelChoiceField(
        queryset=None,
        label="Bill to",
        empty_label=None,
        error_messages={
            "invalid_choice": "Choose one of the accounts listed: you can move a project only to "
            "an account you own.",
            "required": "Choose the account to bill from now on.",
        },
    )

    def __init__(self, *args, accounts, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].queryset = accounts
        self.fields["account"].label_from_instance = lambda a: f"{a.name} ({a.plan.name} plan)"


class ProjectSettingsForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ["help_reply"]
        widgets = {"help_reply": forms.Textarea(attrs={"rows": 2})}


WEEKDAYS = [
    (0, "Monday"),
    (1, "Tuesday"),
    (2, "Wednesday"),
    (3, "Thursday"),
    (4, "Friday"),
    (5, "Saturday"),
    (6, "Sunday"),
]


class SendingHoursForm(forms.Form):
    """Sending hours (owners, inside the administrators' bounds) or their bounds
    (administrators): when texts may go out, in each participant's local time."""

    start = forms.TimeField(
        label="Earliest, participant time",
        widget=forms.TimeInput(attrs={"type": "time"}),
        error_messages={"required": "Give the earliest time.", "invalid": "Give a time."},
    )
    end = forms.TimeField(
        label="Latest, participant time",
        widget=forms.TimeInput(attrs={"type": "time"}),
        error_messages={"required": "Give the latest time.", "invalid": "Give a time."},
    )
    days = forms.TypedMultipleChoiceField(
        label="Days",
        coerce=int,
        choices=WEEKDAYS,
        required=False,  # an empty set gets the service's message, in words
        widget=forms.CheckboxSelectMultiple,
    )
    confirm_calling_hours = forms.BooleanField(
        label="I confirm texts may go out before 8 a.m. or after 9 p.m. participant time, outside "
        "the federal calling-hours rule (47 CFR 64.1200(c)(1)), and that our IRB approved it.",
        required=False,
    )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and start >= end:
            self.add_error(
                "end",
                "The latest time must be after the earliest time (sending hours cannot run past "
                "midnight).",
            )
        return cleaned

    def apply_refusal(self, exc: ValidationError) -> None:
        """A service's refusal beside the field it concerns."""
        for error in exc.error_list:
            field = "confirm_calling_hours" if error.code == "calling_hours" else None
            if "day of the week" in " ".join(error.messages):
                field = "days"
            self.add_error(field, error.messages)
