// latchkey dashboard: small enhancements only; every flow works without this file.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Copy buttons: data-copy names the id of the input (or element) holding the text.
  for (const button of document.querySelectorAll("[data-copy]")) {
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source) return;
      const label = button.textContent;
      // The label says what happened for 2 s; data-copy-result keeps it (for tests and tools).
      try {
        await navigator.clipboard.writeText(source.value ?? source.textContent);
        button.textContent = "Copied";
      } catch (_) {
        source.focus();
        if (source.select) source.select();
        button.textContent = "Press Ctrl+C";
      }
      button.dataset.copyResult = button.textContent;
      setTimeout(() => { button.textContent = label; }, 2000);
    });
  }

  // Selects that submit their form on change (the tenant switcher); the button stays for no-JS.
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.requestSubmit());
  }
  for (const el of document.querySelectorAll("[data-hide-with-js]")) {
    el.hidden = true;
  }

  // Forms that ask before doing something that cannot be undone.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }

  // "Select all" checkbox for bulk actions.
  for (const all of document.querySelectorAll("input[data-select-all]")) {
    all.addEventListener("change", () => {
      for (const box of document.querySelectorAll(`input[name="${all.dataset.selectAll}"]`)) {
        box.checked = all.checked;
      }
    });
  }
});
