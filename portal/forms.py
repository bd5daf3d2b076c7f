from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.forms import PasswordResetForm as DjangoPasswordResetForm
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db.models import Model
from django.http import QueryDict
from django.template.loader import render_to_string

from billing import mail
from billing.selectors import accounts_for_user, plans_offered
from portal.models import ApiToken, OnboardingRequest, User
from portal.services.onboarding import EDITABLE_FIELDS, REQUIRED_TO_SUBMIT
from projects.forms import time_zone_choices
from projects.selectors import redcap_instances_offered


class SignInForm(AuthenticationForm):
    username = forms.EmailField(label="E-mail", widget=forms.EmailInput(attrs={"autofocus": True}))

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": (
            "That e-mail and password do not match an account. Check both and try again."
        ),
        "unverified": (
            "Confirm your e-mail address first: open the link we sent to %(email)s. "
            "Lost it? Use “Send the link again” below."
        ),
    }

    def confirm_login_allowed(self, user) -> None:
        super().confirm_login_allowed(user)
        if not user.email_verified:
            raise ValidationError(
                self.error_messages["unverified"], code="unverified", params={"email": user.email}
            )


class SignUpForm(forms.Form):
    full_name = forms.CharField(label="Your name", max_length=200)
    email = forms.EmailField(label="E-mail (your institutional address)")
    time_zone = forms.ChoiceField(choices=time_zone_choices, initial="America/New_York")
    password1 = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label="Password again", widget=forms.PasswordInput, strip=False)

    def clean_email(self) -> str:
        # No "already exists" here: that would tell anyone who has an account (user_signup).
        return self.cleaned_data["email"].lower()

    def clean(self):
        cleaned = super().clean()
        p1, p2 = cleaned.get("password1"), cleaned.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", "The two passwords differ. Type the same password twice.")
        elif p1:
            user = User(email=cleaned.get("email", ""), full_name=cleaned.get("full_name", ""))
            try:
                password_validation.validate_password(p1, user)
            except ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned


class PasswordResetForm(DjangoPasswordResetForm):
    """Django's, with the site's subject prefix like every other e-mail (billing/mail.py)."""

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ) -> None:
        body = render_to_string(email_template_name, context)
        mail.send(render_to_string(subject_template_name, context), body, [to_email])


class ResendVerificationForm(forms.Form):
    email = forms.EmailField(label="E-mail")


class ProfileForm(forms.Form):
    full_name = forms.CharField(label="Your name", max_length=200, required=False)
    time_zone = forms.ChoiceField(choices=time_zone_choices)


class OnboardingRequestForm(forms.ModelForm):
    """The request form. A draft may be incomplete; submitting makes every field required."""

    draftable = True  # every field is needed to submit, so none is labelled "optional"
    ACCOUNT_EXISTING = "existing"
    ACCOUNT_NEW = "new"

    account_choice = forms.ChoiceField(
        label="Billing account",
        choices=[(ACCOUNT_EXISTING, "An account I belong to"), (ACCOUNT_NEW, "A new account")],
        widget=forms.RadioSelect,
        initial=ACCOUNT_NEW,
    )
    message_kinds = forms.MultipleChoiceField(
        label="Messages you plan to send",
        choices=OnboardingRequest.MessageKind.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    irb_status = forms.ChoiceField(
        label="Is texting approved by the IRB?",
        choices=OnboardingRequest.IrbStatus.choices,
        widget=forms.RadioSelect,
        required=False,
    )
    new_account_time_zone = forms.ChoiceField(
        label="Time zone of the new account",
        choices=time_zone_choices,
        initial="America/New_York",
        required=False,
        help_text="Monthly usage is counted in this time zone.",
    )

    class Meta:
        model = OnboardingRequest
        fields = [*EDITABLE_FIELDS, "account_choice"]
        labels = {
            "redcap_instance": "REDCap server",
            "redcap_project_id": "REDCap project id (PID)",
            "attest_no_phi": "Message text will contain no protected health information (PHI).",
            "attest_consent": "Participants' consent to receive texts is collected and recorded.",
            "new_account_name": "Name of the new account",
            "new_account_plan": "Plan of the new account",
            "billing_account": "Existing account",
        }
        help_texts = {
            "redcap_project_id": "The number REDCap shows as “PID” at the top of the project.",
            "summary": "A few sentences: who the participants are and why you will text them.",
        }
        widgets = {
            "summary": forms.Textarea(attrs={"rows": 4}),
        }
        error_messages = {
            "redcap_instance": {
                "invalid_choice": (
                    "That REDCap server is not on the list the administrators keep. "
                    "Choose one from the list."
                ),
                "required": "Choose the REDCap server that hosts the project.",
            },
            "redcap_project_id": {
                "invalid": (
                    "The REDCap project id is a whole number greater than zero, such as 1234."
                ),
                "min_value": (
                    "The REDCap project id is a whole number greater than zero, such as 1234."
                ),
                "required": "Enter the REDCap project id (the PID).",
            },
            "project_title": {"required": "Give the project a title."},
            "expected_participants": {"min_value": "Enter a whole number greater than zero."},
            "expected_messages_per_month": {"min_value": "Enter a whole number greater than zero."},
            "billing_account": {
                "invalid_choice": "You can only bill a project to an account you belong to."
            },
            "new_account_plan": {"invalid_choice": "Choose one of the plans on the list."},
        }

    def __init__(self, *args, user, submit: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.submit = submit
        self.fields["redcap_instance"].queryset = redcap_instances_offered()
        self.fields["redcap_instance"].empty_label = "Choose a REDCap server"
        self.fields["billing_account"].queryset = accounts_for_user(user=user)
        self.fields["new_account_plan"].queryset = plans_offered()
        for name in ("redcap_project_id", "expected_participants", "expected_messages_per_month"):
            # The model field's form field allows 0; setting min_value after construction does
            # not replace its validator, so swap the validator itself for one that needs >= 1.
            field = self.fields[name]
            field.min_value = 1
            field.validators = [
                v for v in field.validators if not isinstance(v, MinValueValidator)
            ] + [MinValueValidator(1)]
            field.widget.attrs["min"] = 1
        if self.instance.pk:
            self.initial["account_choice"] = (
                self.ACCOUNT_EXISTING if self.instance.billing_account_id else self.ACCOUNT_NEW
            )
        elif self.fields["billing_account"].queryset.exists():
            self.initial["account_choice"] = self.ACCOUNT_EXISTING
        if submit:
            # (No kind of message ticked has its own message: clean_message_kinds.)
            for name in REQUIRED_TO_SUBMIT.keys() - {"message_kinds"}:
                self.fields[name].required = True
            self.fields["pi_name"].error_messages["required"] = "Enter the PI's name."
            self.fields["pi_email"].error_messages["required"] = "Enter the PI's e-mail address."
            self.fields["irb_protocol"].error_messages["required"] = (
                "Enter the IRB protocol number."
            )
            self.fields["irb_status"].error_messages["required"] = (
                "Say whether the IRB has approved texting."
            )
            self.fields["summary"].error_messages["required"] = "Write a short study summary."
            for name in ("expected_participants", "expected_messages_per_month"):
                self.fields[name].error_messages["required"] = (
                    "Enter a whole number greater than zero."
                )

    def clean_message_kinds(self) -> list[str]:
        kinds = self.cleaned_data["message_kinds"]
        if self.submit and not kinds:
            raise ValidationError("Choose at least one kind of message.")
        return kinds

    def clean(self):
        cleaned = super().clean()
        choice = cleaned.get("account_choice")
        if choice == self.ACCOUNT_EXISTING:
            cleaned["new_account_name"] = ""
            cleaned["new_account_plan"] = None
            cleaned["new_account_time_zone"] = ""
            if (
                self.submit
                and not cleaned.get("billing_account")
                and "billing_account" not in self.errors
            ):
                self.add_error("billing_account", "Choose the account to bill.")
        elif choice == self.ACCOUNT_NEW:
            cleaned["billing_account"] = None
            if self.submit:
                if not cleaned.get("new_account_name"):
                    self.add_error("new_account_name", "Give the new account a name.")
                if not cleaned.get("new_account_plan") and "new_account_plan" not in self.errors:
                    self.add_error("new_account_plan", "Choose a plan for the new account.")
        if self.submit:
            for name in ("attest_no_phi", "attest_consent"):
                if not cleaned.get(name):
                    self.add_error(name, "Tick this box to submit; the administrators require it.")
        return cleaned

    def service_data(self) -> dict:
        return {
            name: self.cleaned_data.get(name)
            for name in self.Meta.fields
            if name != "account_choice"
        }

    def instance_as_data(self) -> QueryDict:
        """The saved request as if its form were posted, to check it as a submission would."""
        data = QueryDict(mutable=True)
        for name, field in self.fields.items():
            value = self.get_initial_for_field(field, name)
            if isinstance(value, Model):
                value = value.pk
            if value in (None, "", False, []):
                continue
            if isinstance(value, list | tuple):
                data.setlist(name, [str(v) for v in value])
            else:
                data[name] = "on" if value is True else str(value)
        return data

    def _post_clean(self):
        # The service validates the whole object (and owns the writes); skip ModelForm's own
        # instance validation so errors are not reported twice.
        pass


class DecisionForm(forms.Form):
    DECISIONS = [
        ("approve", "Approve"),
        ("request_changes", "Ask for changes"),
        ("reject", "Reject"),
    ]
    decision = forms.ChoiceField(
        choices=DECISIONS,
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose approve, ask for changes or reject.",
            "invalid_choice": "Choose approve, ask for changes or reject.",
        },
    )
    note = forms.CharField(
        label="Note to the researcher",
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,  # the service asks for it when it is needed, with its own message
        help_text="The researcher reads it on the request and in the e-mail. "
        "You may leave it empty when you approve.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Shown next to the label instead of "(optional)", which is true for one choice in three.
        self.fields["note"].required_when = "to ask for changes or to reject"


class AttachmentForm(forms.Form):
    file = forms.FileField(
        label="Attach a file",
        allow_empty_file=True,  # the service refuses it, naming the file
        error_messages={"required": "Choose a file to attach."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text = (
            "The IRB approval letter or a protocol page: a PDF, PNG or JPEG file of up to "
            f"{settings.ATTACHMENT_MAX_MB} MB. Only you and the administrators can open it."
        )
        self.fields["file"].widget.attrs["accept"] = ".pdf,.png,.jpg,.jpeg"


class CommentForm(forms.Form):
    MAX_LENGTH = 5000

    body = forms.CharField(
        label="Add a comment",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=MAX_LENGTH,
        error_messages={
            "required": "Write a comment before posting it.",
            "max_length": (
                "A comment can be at most %(limit_value)s characters long; this one has "
                "%(show_value)s. Shorten it, or post it as two comments."
            ),
        },
    )


class SecondFactorForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=20,
        strip=True,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
        help_text="The 6 digits your authenticator app shows for StudyText, or one of your "
        "recovery codes.",
        error_messages={"required": "Type the code from your authenticator app."},
    )


class EnrolForm(forms.Form):
    code = forms.CharField(
        label="Code from the app",
        max_length=10,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        error_messages={"required": "Type the 6 digits the app shows, to check it works."},
    )


class PasswordConfirmForm(forms.Form):
    password = forms.CharField(label="Your password", widget=forms.PasswordInput, strip=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise ValidationError("That is not your password.")
        return password


class ApiTokenForm(forms.Form):
    EXPIRY_CHOICES = [("30", "30 days"), ("90", "90 days"), ("365", "1 year"), ("0", "Never")]
    scope = forms.ChoiceField(
        label="What it may do",
        choices=ApiToken.Scope.choices,
        initial=ApiToken.Scope.READ,
        widget=forms.RadioSelect,
        required=False,  # read only unless chosen
    )
    days = forms.TypedChoiceField(
        label="Expires after",
        choices=EXPIRY_CHOICES,
        coerce=int,
        initial="90",
        required=False,  # settings.API_TOKEN_DEFAULT_DAYS unless chosen
        empty_value=None,
    )

    def clean_scope(self) -> str:
        return self.cleaned_data["scope"] or ApiToken.Scope.READ
