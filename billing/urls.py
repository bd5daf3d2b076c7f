from django.urls import path

from billing import views

urlpatterns = [
    path("", views.account_list, name="billing-account-list"),
    path("accounts/<int:pk>/", views.account_detail, name="billing-account-detail"),
    path("accounts/<int:pk>/usage.csv", views.account_usage_csv, name="billing-account-csv"),
    path(
        "accounts/<int:pk>/credit-packs/new/",
        views.credit_pack_request,
        name="billing-credit-pack-request",
    ),
    path(
        "accounts/<int:pk>/plan-change/new/",
        views.plan_change_request,
        name="billing-plan-change-request",
    ),
    path("admin/accounts/", views.admin_accounts, name="billing-admin-accounts"),
    path("admin/usage.csv", views.admin_usage_csv, name="billing-admin-csv"),
    path("admin/review/", views.review, name="billing-review"),
    path(
        "admin/credit-packs/<int:pk>/decide/",
        views.credit_pack_decide,
        name="billing-credit-pack-decide",
    ),
    path(
        "admin/plan-changes/<int:pk>/decide/",
        views.plan_change_decide,
        name="billing-plan-change-decide",
    ),
]
