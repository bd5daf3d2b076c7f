from django import forms

from billing.models import Plan
from billing.services.credits import MAX_PACKS_PER_REQUEST


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
        label="Why (optional)",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args, current_plan: Plan, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["to_plan"]
        field.label_from_instance = lambda plan: (
            f"{plan.name}: up to {plan.project_limit} active projects, "
            f"{plan.monthly_messages:,} a month"
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
