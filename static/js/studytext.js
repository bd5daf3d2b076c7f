// StudyText: small progressive enhancements. Every page works without them.
(function () {
  "use strict";

  // Show only the fields of the chosen billing-account option on the request form.
  function syncAccountChoice() {
    var checked = document.querySelector("input[name=account_choice]:checked");
    if (!checked) return;
    document.querySelectorAll("[data-account-choice]").forEach(function (el) {
      el.hidden = el.getAttribute("data-account-choice") !== checked.value;
    });
  }

  // Ask before destructive actions: <form data-confirm="Withdraw this request?">
  function confirmSubmit(event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("input[name=account_choice]").forEach(function (input) {
      input.addEventListener("change", syncAccountChoice);
    });
    syncAccountChoice();
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", confirmSubmit);
    });
  });
})();
