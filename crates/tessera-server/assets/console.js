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
