// The console's only script (served from Tessera, no inline script): the group
// form shows the rule editor for dynamic groups and checks the rule as it is typed.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf"]')?.content || "";
  const rule = document.getElementById("membershipRule");
  const editor = document.getElementById("rule-editor");
  const answer = document.getElementById("rule-check");
  if (!rule || !editor || !answer) return;
  const dynamic = document.getElementById("membership-dynamic");
  const radios = document.querySelectorAll('input[name="membership"]');
  const showEditor = () => { editor.hidden = !(dynamic && dynamic.checked); };
  radios.forEach((radio) => radio.addEventListener("change", showEditor));
  showEditor();
  let timer = null;
  let asked = 0;
  const check = async () => {
    const mine = ++asked;
    const body = new URLSearchParams({ membershipRule: rule.value });
    try {
      const response = await fetch(rule.dataset.preview, {
        method: "POST",
        headers: { "x-csrf-token": csrf, "content-type": "application/x-www-form-urlencoded" },
        body,
        credentials: "same-origin",
      });
      if (mine !== asked) return; // a newer check is under way
      const text = await response.text();
      const parsed = new DOMParser().parseFromString(text, "text/html");
      answer.replaceChildren(...parsed.body.childNodes);
    } catch (e) {
      if (mine === asked) answer.textContent = "The rule could not be checked.";
    }
  };
  rule.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(check, 300);
  });
  if (rule.value.trim() !== "") check();
})();

// The import of an Entra export: the upload's progress, then the server's work,
// shown while the files travel; the answer replaces the page's content. Without
// this script the form posts as usual.
(function () {
  const bind = () => {
    const form = document.getElementById("import-form");
    const progress = document.getElementById("import-progress");
    if (!form || !progress || !window.FormData) return;
    const bar = document.getElementById("import-bar");
    const state = document.getElementById("import-state");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const data = new FormData(form);
      const files = form.querySelector('input[type="file"]')?.files?.length || 0;
      const request = new XMLHttpRequest();
      request.open("POST", form.action);
      progress.hidden = false;
      form.querySelector('button[type="submit"]').disabled = true;
      bar.value = 0;
      state.textContent = `Uploading ${files} file(s)…`;
      request.upload.addEventListener("progress", (e) => {
        if (!e.lengthComputable) return;
        const percent = Math.round((e.loaded / e.total) * 100);
        bar.value = percent;
        state.textContent = `Uploading ${files} file(s): ${percent}%`;
      });
      request.upload.addEventListener("load", () => {
        bar.removeAttribute("value");
        state.textContent = `Checking and importing ${files} file(s)…`;
      });
      request.addEventListener("load", () => {
        // Sent elsewhere (the console session ended and sign-in took over): nothing
        // was imported; the page is loaded again so the administrator sees why.
        const landed = request.responseURL ? new URL(request.responseURL).pathname : "";
        if (landed !== new URL(form.action).pathname) {
          state.textContent = "Your console session ended before the import: sign in and choose the files again.";
          window.location.assign(form.action);
          return;
        }
        const answer = new DOMParser().parseFromString(request.responseText, "text/html");
        const main = answer.querySelector("main");
        if (!main) {
          state.textContent = answer.body?.textContent?.trim() || "The import did not answer.";
          form.querySelector('button[type="submit"]').disabled = false;
          return;
        }
        document.querySelector("main").replaceWith(main);
        bind();
        (document.getElementById("outcome") || document.getElementById("error") || main).focus?.();
      });
      request.addEventListener("error", () => {
        state.textContent = "The upload failed: check the connection and try again.";
        form.querySelector('button[type="submit"]').disabled = false;
      });
      request.send(data);
    });
  };
  bind();
})();
