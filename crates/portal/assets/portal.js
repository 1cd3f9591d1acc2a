// Mkoba portal: progressive enhancement only. Everything works without this file except
// the copy buttons and the virtual phone's live refresh.
(function () {
  "use strict";
  document.querySelectorAll("button.copy[data-copy]").forEach(function (b) {
    if (!navigator.clipboard) return;
    b.hidden = false;
    var label = b.textContent;
    b.addEventListener("click", function () {
      navigator.clipboard.writeText(b.getAttribute("data-copy")).then(function () {
        b.textContent = "Copied";
        setTimeout(function () { b.textContent = label; }, 1500);
      });
    });
  });
  var phone = document.querySelector("[data-refresh]");
  var live = document.getElementById("live");
  if (phone && live) {
    live.hidden = false;
    if (live.nextElementSibling) live.nextElementSibling.hidden = false;
    var seconds = parseInt(phone.getAttribute("data-refresh"), 10) || 5;
    setInterval(function () {
      if (live.checked && !document.hidden) window.location.reload();
    }, seconds * 1000);
  }
})();
