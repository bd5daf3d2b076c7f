"""Billing writes, split by topic. Import them from here: `from billing.services import ...`."""

from billing.services.accounts import (
    account_assert_project_slot,
    account_create,
    account_plan_set,
    plan_change_request_approve,
    plan_change_request_create,
    plan_change_request_reject,
    plan_save,
)
from billing.services.credits import (
    credit_pack_request_approve,
    credit_pack_request_create,
    credit_pack_request_reject,
)
from billing.services.quota import (
    credits_add,
    quota_release,
    quota_reserve,
    quota_reserve_many,
    quota_unit_label,
    quota_units_for,
    usage_period_current,
    usage_periods_start_due,
)

__all__ = [
    "account_assert_project_slot",
    "account_create",
    "account_plan_set",
    "credit_pack_request_approve",
    "credit_pack_request_create",
    "credit_pack_request_reject",
    "credits_add",
    "plan_change_request_approve",
    "plan_change_request_create",
    "plan_change_request_reject",
    "plan_save",
    "quota_release",
    "quota_reserve",
    "quota_reserve_many",
    "quota_unit_label",
    "quota_units_for",
    "usage_period_current",
    "usage_periods_start_due",
]
