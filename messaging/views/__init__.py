"""The messaging pages, one module per family (as portal/views/): rules, sends, the log,
participants, the provider link, the phone simulator, the staff phone and test texts, and the
providers' webhooks."""
