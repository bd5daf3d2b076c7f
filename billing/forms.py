from django import forms
from django.core.exceptions import ValidationError

from billing.models import Plan
from billing.services.credits import MAX_PACKS_PER_REQUEST
from billing.templatetags.billing_extras import price


def error_text(exc: ValidationError) -> str:
    """A service's refusal as one line, for a flash message."""
    return " ".join(exc.messages)


def form_apply_errors(form: forms.BaseForm, exc: ValidationError) -> None:
    """Show a service's refusal on the form: beside the fields it names, the rest on top."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


class CreditPackRequestForm(forms.Form):
    packs = forms.IntegerField(
        label="Number of packs",
        initial=1,
        min_value=1,
        max_value=MAX_PACKS_PER_REQUEST,
        error_messages={
            "required": "Say how many packs you need.",
            "invalid": "Enter a whole number of packs.",
            "min_value": "Ask for at least one pack.",
            "max_value": f"Ask for at most {MAX_PACKS_PER_REQUEST} packs at a time.",
        },
    )
    note = forms.CharField(
        label="Note for the administrators",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="For example: the study's recruitment is ahead of plan this month.",
    )


class PlanChangeRequestForm(forms.Form):
    to_plan = forms.ModelChoiceField(
        label="New plan",
        queryset=Plan.objects.filter(is_active=True),
        empty_label=None,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": "Choose one of the plans offered."},
    )
    note = forms.CharField(
        label="Why",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args, current_plan: Plan, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["to_plan"]
        field.label_from_instance = lambda plan: (
            plan.name
            + (f" ({price(plan.monthly_price)} a month)" if plan.monthly_price is not None else "")
            + f": up to {plan.project_limit} active projects, {plan.monthly_messages:,} a month"
            + (" (current plan)" if plan.pk == current_plan.pk else "")
        )
        if not self.is_bound:
            self.initial.setdefault("to_plan", field.queryset.exclude(pk=current_plan.pk).first())


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    note = forms.CharField(
        label="Note to the owners",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
