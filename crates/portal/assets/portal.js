// Mkoba portal: progressive enhancement only. Everything works without this file except
// the copy buttons and the virtual phone's live refresh.
(function () {
  "use strict";
  document.querySelectorAll("button.copy[data-copy]").forEach(function (b) {
    if (!navigator.clipboard) return;
    b.hidden = false;
    // "Copied" is announced by screen readers as well as shown.
    b.setAttribute("aria-live", "polite");
    var label = b.textContent;
    b.addEventListener("click", function () {
      navigator.clipboard.writeText(b.getAttribute("data-copy")).then(function () {
        b.textContent = "Copied";
        setTimeout(function () { b.textContent = label; }, 1500);
      }, function () {
        b.textContent = "Not copied: select the text";
        setTimeout(function () { b.textContent = label; }, 3000);
      });
    });
  });
  // A page sent back with an error (a form refused, a filter that cannot be read): focus
  // goes to the error and the title says so. Most pages render the error with the page, and
  // an alert already there when a page loads is not read out by every screen reader; focus
  // had stayed at the top of the page, far from the form on a long one.
  var error = document.querySelector("main .error[role=alert], main [role=alert].error");
  if (error) {
    if (!error.hasAttribute("tabindex")) error.setAttribute("tabindex", "-1");
    error.focus();
    if (document.title.indexOf("Error: ") !== 0) document.title = "Error: " + document.title;
  }
  // A table wider than its box scrolls sideways: it becomes a keyboard stop (to scroll it
  // with the arrow keys) and a region named by its caption or its section's heading, so a
  // screen reader says what the stop is. Checked again when the window changes size.
  function sideways() {
    document.querySelectorAll(".table-wrap").forEach(function (w) {
      if (w.scrollWidth > w.clientWidth + 1) {
        if (w.getAttribute("data-sideways")) return;
        var t = w.querySelector("table");
        var section = w.closest("section");
        var heading = section && section.querySelector("h2, h3");
        var name = (t && t.caption && t.caption.textContent) || (heading && heading.textContent) || "Table";
        w.setAttribute("data-sideways", "1");
        w.setAttribute("tabindex", "0");
        w.setAttribute("role", "region");
        w.setAttribute("aria-label", name.trim() + " (scrolls sideways)");
      } else if (w.getAttribute("data-sideways")) {
        ["data-sideways", "tabindex", "role", "aria-label"].forEach(function (a) { w.removeAttribute(a); });
      }
    });
  }
  sideways();
  var resized = 0;
  window.addEventListener("resize", function () {
    clearTimeout(resized);
    resized = setTimeout(sideways, 150);
  });
  var phone = document.querySelector("[data-refresh]");
  var live = document.getElementById("live");
  if (phone && live) {
    live.hidden = false;
    if (live.nextElementSibling) live.nextElementSibling.hidden = false;
    // Turned off, it stays off on the next visit (a screen reader in browse mode reads
    // without the keys, clicks or focus changes that hold the refresh).
    try {
      if (localStorage.getItem("mkoba-live-refresh") === "off") live.checked = false;
      live.addEventListener("change", function () {
        localStorage.setItem("mkoba-live-refresh", live.checked ? "on" : "off");
      });
    } catch (e) { /* storage refused: the box keeps its default */ }
    var seconds = parseInt(phone.getAttribute("data-refresh"), 10) || 5;
    // Not while someone is using the page: a reload would take the keyboard's place (and a
    // screen reader's) back to the top. A key, a click or a focus change holds it 20 s.
    var touched = 0;
    ["keydown", "pointerdown", "focusin"].forEach(function (e) {
      document.addEventListener(e, function (ev) {
        if (ev.target !== live) touched = Date.now();
      });
    });
    setInterval(function () {
      if (live.checked && !document.hidden && Date.now() - touched > 20000) {
        window.location.reload();
      }
    }, seconds * 1000);
  }
})();
