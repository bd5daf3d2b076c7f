import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from billing import selectors, services
from billing.access import account_get_for_user
from billing.charts import daily_chart, gauge
from billing.exports import csv_response
from billing.forms import (
    CreditPackRequestForm,
    DecisionForm,
    PlanChangeRequestForm,
    error_text,
    form_apply_errors,
)
from billing.models import AccountMembership, CreditPackRequest, PlanChangeRequest
from billing.signals import audit

OWNER = AccountMembership.Role.OWNER


def server_admin_required(view):
    """Signed-in server administrators only (as portal.access's decorator; billing cannot
    import the portal)."""

    @login_required
    def wrapped(request, *args, **kwargs):
        if not request.user.is_server_admin:
            raise PermissionDenied("Only server administrators can see this page.")
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


@login_required
def account_list(request):
    rows = selectors.account_rows_for_user(user=request.user)
    return render(
        request,
        "billing/account_list.html",
        {"rows": rows, "unit_label": services.quota_unit_label()},
    )


@login_required
def account_detail(request, pk: int):
    account, role = account_get_for_user(user=request.user, pk=pk)
    period_id = request.GET.get("period")
    usage = selectors.account_usage(
        account=account, period_id=int(period_id) if period_id and period_id.isdigit() else None
    )
    period = usage.period
    days = selectors.daily_usage(period=period)
    projects = Paginator(selectors.project_usage_for(account=account, period=period), 25)
    return render(
        request,
        "billing/account_detail.html",
        {
            "account": account,
            "role": role,
            "can_request": role == OWNER,
            "usage": usage,
            "period": period,
            "gauge": gauge(period),
            "chart": daily_chart(
                days=days, period=period, today=usage.today if usage.is_current else None
            ),
            "days": days,
            "projects": projects.get_page(request.GET.get("page")),
            "periods": selectors.periods_for(account=account)[:24],
            "credit_packs": selectors.credit_pack_requests_for(account=account)[:10],
            "plan_changes": selectors.plan_change_requests_for(account=account)[:5],
            "unit_label": services.quota_unit_label(),
        },
    )


@login_required
def account_usage_csv(request, pk: int):
    account, role = account_get_for_user(user=request.user, pk=pk)
    audit.send(
        sender=type(account),
        actor=request.user,
        action="account.usage_exported",
        obj=account,
        message="Exported the usage CSV.",
    )
    rows = selectors.usage_csv_rows(accounts=type(account).objects.filter(pk=account.pk))
    return csv_response(rows, f"studytext-usage-account-{account.pk}.csv")


@login_required
def credit_pack_request(request, pk: int):
    account, role = account_get_for_user(user=request.user, pk=pk, owner_required=True)
    form = CreditPackRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            obj = services.credit_pack_request_create(
                account=account,
                packs=form.cleaned_data["packs"],
                note=form.cleaned_data["note"],
                actor=request.user,
            )
        except ValidationError as exc:
            form_apply_errors(form, exc)
        else:
            messages.success(
                request,
                f"Asked for {obj.packs} pack{'s' if obj.packs != 1 else ''} ({obj.units:,} "
                f"{services.quota_unit_label(obj.units)}). The administrators have been told; the "
                "credits are added as soon as one approves.",
            )
            return redirect("billing-account-detail", pk=account.pk)
    return render(
        request,
        "billing/credit_pack_form.html",
        {"account": account, "form": form, "unit_label": services.quota_unit_label()},
    )


@login_required
def plan_change_request(request, pk: int):
    account, role = account_get_for_user(user=request.user, pk=pk, owner_required=True)
    form = PlanChangeRequestForm(request.POST or None, current_plan=account.plan)
    if request.method == "POST" and form.is_valid():
        try:
            obj = services.plan_change_request_create(
                account=account,
                to_plan=form.cleaned_data["to_plan"],
                note=form.cleaned_data["note"],
                actor=request.user,
            )
        except ValidationError as exc:
            form_apply_errors(form, exc)
        else:
            messages.success(
                request,
                f"Asked to move to the {obj.to_plan.name} plan. The administrators have been told.",
            )
            return redirect("billing-account-detail", pk=account.pk)
    return render(
        request,
        "billing/plan_change_form.html",
        {
            "account": account,
            "form": form,
            "active_projects": account.projects.exclude(status="archived").count(),
        },
    )


@server_admin_required
def admin_accounts(request):
    sort = request.GET.get("sort", "-usage")
    search = request.GET.get("q", "")
    rows = selectors.account_rows_all(sort=sort, search=search)
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    columns = [
        ("name", "Account"),
        ("plan", "Plan"),
        ("projects", "Projects"),
        ("usage", "Used this month"),
        ("credits", "Credits left"),
        ("overrun", "Projected"),
    ]
    return render(
        request,
        "billing/admin_accounts.html",
        {
            "page": page,
            "sort": sort,
            "search": search,
            "columns": columns,
            "unit_label": services.quota_unit_label(),
            "pending": selectors.pending_review_count(),
        },
    )


@server_admin_required
def admin_usage_csv(request):
    raw = request.GET.get("month", "")
    try:
        month = datetime.date.fromisoformat(raw + "-01") if raw else None
    except ValueError:
        month = None
    audit.send(
        sender=type(request.user),
        actor=request.user,
        action="billing.usage_exported",
        obj=request.user,
        message=f"Exported the usage CSV of every account ({raw or 'all months'}).",
    )
    name = f"studytext-usage-{month:%Y-%m}.csv" if month else "studytext-usage.csv"
    return csv_response(selectors.usage_csv_rows(month=month), name)


@server_admin_required
def review(request):
    return render(
        request,
        "billing/review.html",
        {
            "credit_packs": selectors.credit_pack_requests_pending(),
            "plan_changes": selectors.plan_change_requests_pending(),
            "decided": selectors.credit_pack_requests_decided(),
            "decision_form": DecisionForm(),
            "unit_label": services.quota_unit_label(),
        },
    )


def _decide(request, *, obj, approve, reject, what: str):
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose approve or reject.")
        return redirect("billing-review")
    note = form.cleaned_data["note"]
    try:
        if form.cleaned_data["decision"] == "approve":
            approve(obj, note)
            messages.success(request, f"Approved the {what} for “{obj.account}”. Owners told.")
        else:
            reject(obj, note)
            messages.success(request, f"Rejected the {what} for “{obj.account}”. Owners told.")
    except ValidationError as exc:
        messages.error(request, f"Nothing changed: {error_text(exc)}")
    return redirect("billing-review")


@server_admin_required
@require_POST
def credit_pack_decide(request, pk: int):
    obj = get_object_or_404(CreditPackRequest.objects.select_related("account"), pk=pk)
    return _decide(
        request,
        obj=obj,
        what="credit packs",
        approve=lambda o, note: services.credit_pack_request_approve(
            credit_pack=o, actor=request.user, note=note
        ),
        reject=lambda o, note: services.credit_pack_request_reject(
            credit_pack=o, actor=request.user, note=note
        ),
    )


@server_admin_required
@require_POST
def plan_change_decide(request, pk: int):
    obj = get_object_or_404(PlanChangeRequest.objects.select_related("account"), pk=pk)
    return _decide(
        request,
        obj=obj,
        what="plan change",
        approve=lambda o, note: services.plan_change_request_approve(
            plan_change=o, actor=request.user, note=note
        ),
        reject=lambda o, note: services.plan_change_request_reject(
            plan_change=o, actor=request.user, note=note
        ),
    )
