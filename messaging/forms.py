import re

from django import forms

from messaging.gateways import gateway_class
from messaging.models import WEEKDAY_NAMES, MessageRule
from messaging.piping import MAX_BODY_CHARS
from messaging.services.provider_links import providers_offered
from messaging.services.rules import RULE_FIELDS


def split_record_ids(raw: str) -> list[str]:
    """Record ids typed "1, 2 3;4" (commas, spaces, semicolons or new lines between them)."""
    return [r for r in re.split(r"[\s,;]+", raw) if r]


WEEKDAYS = list(enumerate(WEEKDAY_NAMES))


class RuleForm(forms.ModelForm):
    record_ids = forms.CharField(
        label="Records",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Record ids, separated by commas or spaces.",
    )
    recur_days = forms.TypedMultipleChoiceField(
        label="On",
        coerce=int,
        choices=WEEKDAYS,
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "inline-choices"}),
        help_text="Leave every day unticked to text every day.",
    )
    alert_emails = forms.CharField(
        label="And these e-mail addresses",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One per line (a shared inbox, the PI).",
    )
    instrument = forms.ChoiceField(label="Survey", required=False)
    date_field = forms.ChoiceField(label="REDCap date", required=False)

    class Meta:
        model = MessageRule
        # `schedule` and `offset_days` follow the trigger and the offset (the service sets them).
        fields = [f for f in RULE_FIELDS if f not in ("schedule", "offset_days")]
        labels = {
            "trigger": "Trigger",
            "offset": "How long after (negative: before)",
            "offset_unit": "Unit",
            "trigger_logic": "Trigger logic",
            "logic_repeat": "Send",
            "anchor_rule": "After the invitation",
            "repeat_every_days": "Every (days)",
            "repeat_count": "Up to (times)",
            "notify_team": "Alert the study team instead of texting the participant",
            "alert_members": "E-mail these project members",
            "alert_sms": "Also text the chosen members' own phones",
            "kind": "Kind",
            "body": "Text",
            "recipients": "Send to",
            "filter_logic": "REDCap filter logic",
            "schedule": "Schedule",
            "send_time": "At (participant's local time)",
            "once_date": "Date",
            "start_date": "From",
            "until_date": "Until",
            "max_occurrences": "Or this many times",
            "offset_days": "Days after (negative: before)",
            "max_sends": "Stop after this many texts to a participant",
            "stop_when_complete": "Stop once the participant has completed the survey",
        }
        widgets = {
            "body": forms.Textarea(attrs={"rows": 4, "data-preview-source": "1"}),
            "filter_logic": forms.Textarea(attrs={"rows": 2}),
            "kind": forms.RadioSelect,
            "recipients": forms.RadioSelect,
            "schedule": forms.RadioSelect,
            "trigger": forms.RadioSelect,
            "logic_repeat": forms.RadioSelect,
            "alert_members": forms.CheckboxSelectMultiple,
            "trigger_logic": forms.Textarea(attrs={"rows": 2}),
            "send_time": forms.TimeInput(attrs={"type": "time"}),
            "once_date": forms.DateInput(attrs={"type": "date"}),
            "start_date": forms.DateInput(attrs={"type": "date"}),
            "until_date": forms.DateInput(attrs={"type": "date"}),
        }

    def __init__(
        self,
        *args,
        instruments: list[tuple[str, str]],
        date_fields: list[str],
        project=None,
        can_set_alert_emails: bool = True,
        **kw,
    ):
        self.project = project
        super().__init__(*args, **kw)
        if not can_set_alert_emails:
            # Owners add fixed addresses (docs/sending.md, "Alerts to the study team"): a
            # disabled field posts nothing, so the saved addresses go back unchanged.
            self.fields["alert_emails"].disabled = True
            self.fields[
                "alert_emails"
            ].help_text = "Only the project's owners add or change these addresses; ask an owner."
        self.fields["kind"].choices = MessageRule.Kind.choices  # no blank radio
        self.fields["trigger"].choices = MessageRule.Trigger.choices
        self.fields["trigger"].required = False  # posts from before triggers name a schedule
        self.fields["logic_repeat"].choices = MessageRule.LogicRepeat.choices
        self.fields["logic_repeat"].required = False
        self.fields["offset"].required = False
        self.fields["offset_unit"].required = False
        self.fields[
            "offset"
        ].help_text = (
            "Days: sent at the time of day below. Hours or minutes: exactly that long after."
        )
        self.fields["trigger_logic"].help_text = (
            "Checked each time REDCap saves the record (Data Entry Trigger) and at each sync; "
            "it sends when the logic turns from false to true, e.g. [pain_score] >= 8."
        )
        project = self.project or (self.instance.project if self.instance.pk else None)
        invitations = MessageRule.objects.filter(kind=MessageRule.Kind.INVITATION).exclude(
            status=MessageRule.Status.ARCHIVED
        )
        self.fields["anchor_rule"].queryset = (
            invitations.filter(project=project).exclude(pk=self.instance.pk)
            if project
            else invitations.none()
        )
        self.fields["anchor_rule"].empty_label = "Choose the invitation"
        from django.contrib.auth import get_user_model

        self.fields["alert_members"].queryset = (
            get_user_model().objects.filter(memberships__project=project).order_by("email")
            if project
            else get_user_model().objects.none()
        )
        self.fields["alert_members"].label_from_instance = lambda u: (
            f"{u.full_name} ({u.email})" if getattr(u, "full_name", "") else u.email
        )
        self.fields["alert_sms"].help_text = (
            "E-mails to the team do not count against the texts quota; a text to a member's "
            "phone (confirmed under “My phone”) counts as one text, like any other."
        )
        self.fields["notify_team"].help_text = (
            "For “when REDCap logic becomes true” or “after a survey was completed”. The text "
            "can pipe any REDCap field, e.g. “Participant [record_id] reported pain "
            "[pain_score]”; never the participant's phone number."
        )
        if self.instance.pk:
            self.initial["alert_emails"] = "\n".join(self.instance.alert_emails or [])
        for name in ("stop_when_complete", "max_sends", "send_time"):
            self.fields[name].help_text = ""  # the label says it all
        self.fields["instrument"].choices = [("", "— none —"), *instruments]
        self.fields["date_field"].choices = [
            ("", "Choose a date field"),
            *[(f, f) for f in date_fields],
        ]
        self.fields["event"].help_text = "Longitudinal projects: the event of the survey."
        if not date_fields:
            self.fields[
                "date_field"
            ].help_text = "No REDCap date field is mapped yet: add one under Set-up → Fields."
        # Shown only for the choice that needs them, and required there (the service says so
        # when one is missing): "(optional)" next to them would mislead.
        for name in (
            "filter_logic",
            "record_ids",
            "once_date",
            "start_date",
            "until_date",
            "max_occurrences",
            "date_field",
            "offset",
            "trigger_logic",
            "anchor_rule",
            "repeat_every_days",
            "repeat_count",
        ):
            self.fields[name].conditionally_required = True
        if self.instance.pk:
            self.initial["record_ids"] = ", ".join(self.instance.record_ids or [])

    def clean_alert_emails(self) -> list[str]:
        return [e for e in re.split(r"[\s,;]+", self.cleaned_data.get("alert_emails") or "") if e]

    def clean_record_ids(self) -> list[str]:
        return split_record_ids(self.cleaned_data.get("record_ids") or "")

    def _post_clean(self):
        pass  # the service validates (with REDCap) and saves

    def service_data(self) -> dict:
        data = dict(self.cleaned_data)
        # A post from before triggers (a schedule and days) means the same trigger.
        if not data.get("trigger"):
            data["trigger"] = self.data.get("schedule") or MessageRule.Trigger.ONCE
        if self.data.get("offset") in (None, "") and self.data.get("offset_days") not in (None, ""):
            try:
                data["offset"] = int(self.data["offset_days"])
            except ValueError:
                data["offset"] = 0
        if data.get("offset") is None:
            data["offset"] = 0
        data["offset_unit"] = data.get("offset_unit") or MessageRule.OffsetUnit.DAYS
        data["logic_repeat"] = data.get("logic_repeat") or MessageRule.LogicRepeat.ONCE
        data["alert_members"] = list(data.get("alert_members") or [])
        return data


class AdhocForm(forms.Form):
    # No max_length: the browser would cut a longer paste short without a word. The preview
    # counts the characters as they are typed, and a text that is too long is refused here.
    body = forms.CharField(
        label="Text",
        widget=forms.Textarea(attrs={"rows": 3, "data-preview-source": "1"}),
        help_text="You can pipe [first_name] and the mapped dates. Survey links go in a "
        "survey invitation.",
        error_messages={"required": "Write the text."},
    )

    def clean_body(self) -> str:
        body = self.cleaned_data["body"]
        over = len(body) - MAX_BODY_CHARS
        if over > 0:
            raise forms.ValidationError(
                f"This text has {len(body):,} characters; carriers refuse texts over "
                f"{MAX_BODY_CHARS:,}. Shorten it by {over:,}."
            )
        return body


class StaffPhoneForm(forms.Form):
    phone = forms.CharField(
        label="Your mobile number",
        max_length=32,
        help_text="We text a 6-digit code to it through this project's SMS provider (it counts "
        "as one text). Only its last four digits are ever shown.",
        error_messages={"required": "Type your mobile number."},
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
    )


class PhoneCodeForm(forms.Form):
    code = forms.CharField(
        label="The code we texted you",
        max_length=12,
        error_messages={"required": "Type the 6-digit code."},
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


class ProviderLinkForm(forms.Form):
    provider = forms.ChoiceField(label="Provider", choices=(), widget=forms.RadioSelect)
    api_key = forms.CharField(
        label="Mosio API key",
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text="From Mosio: Account Overview, or Quicklinks → RCD Dashboard.",
    )
    account_sid = forms.CharField(
        label="Twilio account SID", required=False, help_text="AC followed by 32 characters."
    )
    auth_token = forms.CharField(
        label="Twilio auth token",
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
    )
    sender = forms.CharField(
        label="Twilio sender",
        required=False,
        help_text="The number texts come from (+15551234567) or a Messaging Service SID (MG…).",
    )
    rate_per_second = forms.DecimalField(
        label="Send rate (segments per second)",
        initial=1,
        min_value=0.1,
        max_value=500,
        help_text="1 for a US long code, 3 for toll-free, 100 or more for a short code.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = providers_offered()

    def config(self) -> dict[str, str]:
        """The chosen provider's settings: the fields its gateway declares (config_fields)."""
        fields = gateway_class(self.cleaned_data["provider"]).config_fields
        return {f.key: self.cleaned_data.get(f.key, "") for f in fields}


class TextSurveyForm(forms.Form):
    """The settings of a rule of kind "text survey" (the rule's own form holds the intro, the
    instrument, recipients and schedule). Prefixed ``survey``; shown for that kind only."""

    closing_text = forms.CharField(
        label="Closing text",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Sent after the last answer, e.g. “Thank you, that is all!”",
    )
    invalid_text = forms.CharField(
        label="When an answer does not fit",
        required=False,
        max_length=320,
        initial="Sorry, we could not read that answer.",
        help_text="Sent with the reason and the question again.",
    )
    max_invalid = forms.IntegerField(
        label="Answers that do not fit, before moving on",
        min_value=0,
        max_value=5,
        initial=2,
        help_text="Then an optional question is skipped, a required one ends the survey and "
        "the team is told.",
    )
    start = forms.ChoiceField(
        label="Start",
        choices=(
            ("at_once", "At once: the intro and the first question in one text"),
            ("word", "When the participant replies with the start word"),
        ),
        initial="at_once",
        widget=forms.RadioSelect,
    )
    start_word = forms.CharField(label="Start word", required=False, max_length=20, initial="YES")
    time_limit_hours = forms.IntegerField(
        label="Time to finish (hours)", min_value=1, max_value=720, initial=24
    )
    reminder_hours = forms.IntegerField(
        label="Remind this many hours before it closes",
        required=False,
        min_value=1,
        max_value=719,
        help_text="Leave empty for no reminder.",
    )
    reminder_text = forms.CharField(
        label="Text of the reminder before it closes", required=False, max_length=320
    )
    expiry_text = forms.CharField(
        label="When time is up",
        required=False,
        max_length=320,
        help_text="Sent when the survey closes unfinished (answers so far are kept).",
    )

    def __init__(self, *args, survey=None, **kwargs):
        if survey is not None and not kwargs.get("data") and not (args and args[0]):
            kwargs["initial"] = {
                "closing_text": survey.closing_text,
                "invalid_text": survey.invalid_text,
                "max_invalid": survey.max_invalid,
                "start": survey.start,
                "start_word": survey.start_word,
                "time_limit_hours": int(survey.time_limit.total_seconds() // 3600),
                "reminder_hours": int(survey.reminder_before.total_seconds() // 3600)
                if survey.reminder_before
                else None,
                "reminder_text": survey.reminder_text,
                "expiry_text": survey.expiry_text,
            }
        kwargs.setdefault("prefix", "survey")
        super().__init__(*args, **kwargs)
        self.fields["start_word"].conditionally_required = True

    def service_data(self) -> dict:
        import datetime

        data = dict(self.cleaned_data)
        hours = data.pop("time_limit_hours")
        remind = data.pop("reminder_hours")
        data["time_limit"] = datetime.timedelta(hours=hours)
        data["reminder_before"] = datetime.timedelta(hours=remind) if remind else None
        return data
