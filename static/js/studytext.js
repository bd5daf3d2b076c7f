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
      var match = parts[1].split("|").indexOf(value) !== -1; // "trigger=relative|completion"
      el.hidden = el.hasAttribute("data-show-when") ? !match : match;
    });
  }

  // Live preview of a text while it is typed: the message form, and the text to one participant
  // (<form data-preview-url data-preview-panel="preview">, the panel from messaging/_preview.html).
  // Answers can arrive out of order (a slow one for an older text after a fast one for the newer):
  // only the latest is shown.
  var previewSeq = 0;
  function refreshPreview(form) {
    var panel = form.getAttribute("data-preview-panel");
    var part = function (name) { return document.getElementById(panel + "-" + name); };
    var seq = ++previewSeq;
    var data = new FormData();
    data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    data.append("body", form.querySelector("[name=body]").value);
    var chooser = part("participant");
    if (form.hasAttribute("data-participant")) {
      // One participant: priced as one text to that record.
      data.append("participant", form.getAttribute("data-participant"));
      data.append("recipients", "records");
      data.append("record_ids", form.getAttribute("data-record-id"));
    } else {
      data.append("participant", chooser ? chooser.value : "");
      var recipients = form.querySelector("input[name=recipients]:checked");
      data.append("recipients", recipients ? recipients.value : "all");
      data.append("record_ids", (form.querySelector("[name=record_ids]") || {}).value || "");
    }
    fetch(form.getAttribute("data-preview-url"), { method: "POST", body: data, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (p) {
        if (!p || seq !== previewSeq) return;
        part("text").textContent = p.text || "Type the text to see it here.";
        part("encoding").textContent =
          p.encoding + (p.ucs2_char ? " (because of “" + p.ucs2_char + "”)" : "");
        part("characters").textContent = number(p.characters) + " of 1,600";
        part("segments").textContent = p.segments;
        if (part("recipients")) {
          part("recipients").textContent =
            p.recipients + (p.recipients_note ? " (" + p.recipients_note + ")" : "");
        }
        part("cost").textContent =
          number(p.cost) + " " + p.unit + (p.cost === 1 ? "" : "s") +
          " (" + number(p.remaining) + " left this month)";
        var warn = part("warning");
        var notes = [];
        if (p.unknown && p.unknown.length) notes.push("Unknown piping: [" + p.unknown.join("], [") + "]");
        if (p.missing && p.missing.length) notes.push("Blank in REDCap for this participant: [" + p.missing.join("], [") + "].");
        if (p.too_long) notes.push("Too long: carriers refuse texts over 1,600 characters.");
        if (p.cost > p.remaining) notes.push("This send is more than the quota left; the rest would be held.");
        warn.textContent = notes.join(" ");
        warn.hidden = notes.length === 0;
      });
  }
  // "Send a test to my phone" under the preview: the text being written, as it reads for the
  // chosen record, to the editor's own confirmed phone.
  function sendTest(form, button) {
    var panel = form.getAttribute("data-preview-panel");
    var out = document.getElementById(panel + "-test-result");
    var chooser = document.getElementById(panel + "-participant");
    var data = new FormData();
    data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    data.append("body", form.querySelector("[name=body]").value);
    data.append("participant", chooser ? chooser.value : form.getAttribute("data-participant") || "");
    button.disabled = true;
    out.hidden = false;
    out.className = "small";
    out.textContent = "Sending…";
    fetch(button.getAttribute("data-test-url"), {
      method: "POST", body: data, credentials: "same-origin", headers: { Accept: "application/json" }
    })
      .then(function (r) { return r.json(); })
      .then(function (p) {
        out.textContent = p.message;
        out.className = "small " + (p.ok ? "text-ok" : "text-bad");
      })
      .catch(function () {
        out.textContent = "The test could not be sent (the portal did not answer). Try again.";
        out.className = "small text-bad";
      })
      .then(function () { button.disabled = false; });
  }

  var previewTimer = null;
  function schedulePreview(form) {
    window.clearTimeout(previewTimer);
    previewTimer = window.setTimeout(function () { refreshPreview(form); }, 250);
  }

  // A list that refreshes itself (the inbox: <div data-refresh-url data-refresh-seconds>): the
  // fragment is fetched again and swapped in, unless someone is typing in it; the count it
  // carries (#inbox-count[data-count]) updates the project's "Inbox" tab too.
  function refreshList(box) {
    var seconds = parseInt(box.getAttribute("data-refresh-seconds"), 10) || 15;
    window.setTimeout(function () {
      if (box.contains(document.activeElement) && document.activeElement.tagName !== "BODY") {
        refreshList(box);
        return;
      }
      fetch(box.getAttribute("data-refresh-url"), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html !== null) {
            box.innerHTML = html;
            box.querySelectorAll("form[data-confirm]").forEach(function (form) {
              form.addEventListener("submit", confirmSubmit);
            });
            var count = box.querySelector("#inbox-count");
            var tab = document.getElementById("nav-inbox-count");
            if (count && tab) {
              var n = count.getAttribute("data-count");
              tab.textContent = n;
              tab.hidden = n === "0";
            }
          }
          refreshList(box);
        })
        .catch(function () { refreshList(box); });
    }, seconds * 1000);
  }

  // A text survey's "Check the instrument": the form as it stands, answered with an HTML
  // fragment listing what is asked and refused and the worst-case cost.
  function checkSurvey(button) {
    var form = button.closest("form");
    var target = document.getElementById("text-survey-check");
    target.textContent = "Reading the instrument from REDCap…";
    fetch(button.getAttribute("data-survey-check-url"), {
      method: "POST", body: new FormData(form), credentials: "same-origin",
    })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        target.innerHTML = html || "The check did not answer; try again.";
      })
      .catch(function () { target.textContent = "The check did not answer; try again."; });
  }

  // The message form's recipient count after the REDCap filter (<p id="recipient-count"
  // data-count-url>): asked when the choice, the logic or the records change (a textarea's
  // "change" comes when it loses focus, not on each keystroke); the server counts in a task and
  // the answer is polled until ready. Only the latest request's answer is shown.
  var countSeq = 0;
  function countRecipients(form, out) {
    var seq = ++countSeq;
    var value = document.getElementById("recipient-count-value");
    var chosen = form.querySelector("input[name=recipients]:checked");
    var data = new FormData();
    data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    data.append("recipients", chosen ? chosen.value : "all");
    data.append("filter_logic", (form.querySelector("[name=filter_logic]") || {}).value || "");
    data.append("record_ids", (form.querySelector("[name=record_ids]") || {}).value || "");
    value.textContent = "counting…";
    var show = function (p) {
      if (seq !== countSeq) return;
      if (!p) { value.textContent = "could not be counted"; return; }
      if (p.status === "pending") {
        window.setTimeout(function () {
          fetch(p.poll, { credentials: "same-origin" })
            .then(function (r) { return r.json(); })
            .then(function (next) { next.poll = p.poll; show(next); });
        }, 700);
        return;
      }
      value.textContent = p.status === "done" ? number(p.count) : p.message;
    };
    fetch(out.getAttribute("data-count-url"), { method: "POST", body: data, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(show, function () { show(null); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh-url]").forEach(refreshList);
    var surveyCheck = document.getElementById("survey-check-button");
    if (surveyCheck) surveyCheck.addEventListener("click", function () { checkSurvey(surveyCheck); });
    var counter = document.getElementById("recipient-count");
    if (counter) {
      var countForm = counter.closest("form");
      countForm.querySelectorAll("input[name=recipients], [name=filter_logic], [name=record_ids]")
        .forEach(function (input) {
          input.addEventListener("change", function () { countRecipients(countForm, counter); });
        });
      countRecipients(countForm, counter);
    }
    document.querySelectorAll("input[type=radio], select").forEach(function (input) {
      input.addEventListener("change", syncConditional);
    });
    syncConditional();
    document.querySelectorAll("form[data-preview-panel]").forEach(function (form) {
      var again = function () { schedulePreview(form); };
      form.addEventListener("input", again);
      form.addEventListener("change", again);
      var chooser = document.getElementById(form.getAttribute("data-preview-panel") + "-participant");
      if (chooser) chooser.addEventListener("change", again);
      var test = document.getElementById(form.getAttribute("data-preview-panel") + "-test-button");
      if (test) test.addEventListener("click", function () { sendTest(form, test); });
      refreshPreview(form);
    });
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
