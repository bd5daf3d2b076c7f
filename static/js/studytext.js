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

  // Live progress: <section data-poll-url="...json" data-done="0"> with [data-field] children
  // (their text follows the field) and [data-show-if] ones (shown while that count is not 0).
  // After a few failed polls in a row (signed out, server gone) it stops rather than loop forever.
  var POLL_GIVE_UP = 5;
  function poll(section, failures) {
    failures = failures || 0;
    var url = section.getAttribute("data-poll-url");
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        section.querySelectorAll("[data-show-if]").forEach(function (el) {
          el.hidden = !data[el.getAttribute("data-show-if")];
        });
        section.querySelectorAll("[data-field]").forEach(function (el) {
          var key = el.getAttribute("data-field");
          if (!(key in data)) return;
          if (el.tagName === "PROGRESS" || el.tagName === "METER") {
            el.value = data[key];
          } else if (key === "error") {
            el.textContent = data[key];
            el.hidden = !data[key];
          } else {
            el.textContent = data[key];
          }
          if (key === "status_display" && data.status) el.className = "badge badge-" + data.status;
        });
        if (data.done) {
          section.setAttribute("data-done", "1");
        } else {
          window.setTimeout(function () { poll(section, 0); }, 1000);
        }
      })
      .catch(function () {
        if (failures + 1 < POLL_GIVE_UP) {
          window.setTimeout(function () { poll(section, failures + 1); }, 3000);
        }
      });
  }

  function number(n) {
    return Number(n).toLocaleString("en-US");
  }

  // <div data-show-when="schedule=once">: shown only while that radio/select has that value.
  function syncConditional() {
    document.querySelectorAll("[data-show-when],[data-hide-when]").forEach(function (el) {
      var rule = el.getAttribute("data-show-when") || el.getAttribute("data-hide-when");
      var parts = rule.split("=");
      var checked = document.querySelector("input[name=" + parts[0] + "]:checked");
      var select = document.querySelector("select[name=" + parts[0] + "]");
      var value = checked ? checked.value : select ? select.value : "";
      var match = value === parts[1];
      el.hidden = el.hasAttribute("data-show-when") ? !match : match;
    });
  }

  // Live preview of a message while it is typed (rule form). Answers can arrive out of order
  // (a slow one for an older text after a fast one for the newer): only the latest is shown.
  var previewTimer = null;
  var previewSeq = 0;
  function refreshPreview() {
    var form = document.getElementById("rule-form");
    if (!form) return;
    var seq = ++previewSeq;
    var data = new FormData();
    data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    data.append("body", form.querySelector("[name=body]").value);
    data.append("participant", document.getElementById("preview-participant").value);
    var recipients = form.querySelector("input[name=recipients]:checked");
    data.append("recipients", recipients ? recipients.value : "all");
    data.append("record_ids", (form.querySelector("[name=record_ids]") || {}).value || "");
    fetch(form.getAttribute("data-preview-url"), { method: "POST", body: data, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (p) {
        if (!p || seq !== previewSeq) return;
        document.getElementById("preview-text").textContent = p.text || "Type the text to see it here.";
        document.getElementById("preview-encoding").textContent =
          p.encoding + (p.ucs2_char ? " (because of “" + p.ucs2_char + "”)" : "");
        document.getElementById("preview-characters").textContent = p.characters;
        document.getElementById("preview-segments").textContent = p.segments;
        document.getElementById("preview-recipients").textContent =
          p.recipients + (p.recipients_note ? " (" + p.recipients_note + ")" : "");
        document.getElementById("preview-cost").textContent =
          number(p.cost) + " " + p.unit + (p.cost === 1 ? "" : "s") +
          " (" + number(p.remaining) + " left this month)";
        var warn = document.getElementById("preview-warning");
        var notes = [];
        if (p.unknown && p.unknown.length) notes.push("Unknown piping: [" + p.unknown.join("], [") + "]");
        if (p.missing && p.missing.length) notes.push("Blank in REDCap for this participant: [" + p.missing.join("], [") + "].");
        if (p.too_long) notes.push("Too long: carriers refuse texts over 1,600 characters.");
        if (p.cost > p.remaining) notes.push("This send is more than the quota left; the rest would be held.");
        warn.textContent = notes.join(" ");
        warn.hidden = notes.length === 0;
      });
  }
  function schedulePreview() {
    window.clearTimeout(previewTimer);
    previewTimer = window.setTimeout(refreshPreview, 250);
  }

  // The ad-hoc text on a participant's page: how it reads for them, and its segments.
  var adhocTimer = null;
  var adhocSeq = 0;
  function refreshAdhocPreview() {
    var form = document.getElementById("adhoc-form");
    var out = document.getElementById("adhoc-preview");
    var body = form.querySelector("[name=body]").value;
    var seq = ++adhocSeq;
    if (!body.trim()) { out.hidden = true; return; }
    var data = new FormData();
    data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    data.append("body", body);
    data.append("participant", form.getAttribute("data-participant"));
    data.append("recipients", "records");
    fetch(form.getAttribute("data-preview-url"), { method: "POST", body: data, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (p) {
        if (!p || seq !== adhocSeq) return;
        var words = "Reads: “" + p.text + "” · " + p.segments + " segment" +
          (p.segments === 1 ? "" : "s") + " (" + p.encoding +
          (p.ucs2_char ? ", because of “" + p.ucs2_char + "”" : "") + ")";
        if (p.unknown && p.unknown.length) words += " · Unknown piping: [" + p.unknown.join("], [") + "]";
        if (p.missing && p.missing.length) words += " · Blank in REDCap: [" + p.missing.join("], [") + "]";
        out.textContent = words;
        out.hidden = false;
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("input[type=radio], select").forEach(function (input) {
      input.addEventListener("change", syncConditional);
    });
    syncConditional();
    var ruleForm = document.getElementById("rule-form");
    if (ruleForm) {
      ruleForm.addEventListener("input", schedulePreview);
      ruleForm.addEventListener("change", schedulePreview);
      document.getElementById("preview-participant").addEventListener("change", schedulePreview);
      refreshPreview();
    }
    var adhoc = document.getElementById("adhoc-form");
    if (adhoc) {
      adhoc.querySelector("[name=body]").addEventListener("input", function () {
        window.clearTimeout(adhocTimer);
        adhocTimer = window.setTimeout(refreshAdhocPreview, 250);
      });
    }
    document.querySelectorAll("[data-poll-url]").forEach(function (section) {
      if (section.getAttribute("data-done") !== "1") poll(section);
    });
    document.querySelectorAll("input[name=account_choice]").forEach(function (input) {
      input.addEventListener("change", syncAccountChoice);
    });
    syncAccountChoice();
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", confirmSubmit);
    });
  });
})();
