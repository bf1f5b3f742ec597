// The submission form: checks the typed card against the hub's schema as you type (the same
// check as the push), and uploads with a progress bar. Without JavaScript the form posts as is.
"use strict";

function initSubmissionForm() {
  const form = document.getElementById("submission");
  if (!form) return;
  const card = form.querySelector("textarea[name=card]");
  const report = document.getElementById("card-check");
  const progress = document.getElementById("upload-progress");
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  let timer = null;

  function show(problems, ok) {
    const list = document.createElement("ul");
    list.id = "card-problems";
    list.className = ok ? "card-ok" : "card-problems";
    if (ok) {
      const item = document.createElement("li");
      item.textContent = "The card passes the schema.";
      list.appendChild(item);
    }
    problems.forEach(function (problem) {
      const item = document.createElement("li");
      const where = document.createElement("code");
      where.textContent = problem.loc;
      item.appendChild(where);
      item.appendChild(document.createTextNode(": " + problem.msg));
      list.appendChild(item);
    });
    report.replaceChildren(list);
    card.setAttribute("aria-invalid", ok ? "false" : "true");
  }

  function check() {
    if (!card.value.trim()) { report.replaceChildren(); return; }
    fetch(form.dataset.checkUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: card.value,
    })
      .then(function (response) { return response.json(); })
      .then(function (answer) { show(answer.problems, answer.ok); })
      .catch(function () { /* the server checks again on submit */ });
  }

  card.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(check, 400);
  });
  if (card.value.trim()) check();

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const request = new XMLHttpRequest();
    request.open("POST", form.action || window.location.href);
    progress.classList.remove("hidden");
    request.upload.addEventListener("progress", function (step) {
      if (step.lengthComputable) progress.value = Math.round((100 * step.loaded) / step.total);
    });
    request.addEventListener("load", function () {
      if (request.status < 400 && request.responseURL && request.responseURL !== window.location.href) {
        window.location.assign(request.responseURL);
        return;
      }
      // The form came back with its errors: show that page's form in place of this one.
      const page = new DOMParser().parseFromString(request.responseText, "text/html");
      const main = page.querySelector("main");
      if (main) {
        document.querySelector("main").replaceWith(main);
        initSubmissionForm();
      }
      window.scrollTo(0, 0);
    });
    request.addEventListener("error", function () { form.submit(); });
    request.send(new FormData(form));
  });
}

initSubmissionForm();
