// The Collection Widget demo page: every widget event, logged as it comes.
"use strict";
(function () {
  var list = document.getElementById("widget-events");
  if (!list) return;
  ["created", "canceled", "successful", "failed"].forEach(function (name) {
    document.addEventListener("mobile-money-qr-payment-" + name, function (e) {
      var item = document.createElement("li");
      item.textContent = new Date().toISOString().slice(11, 19) + "  " + name + "  " + JSON.stringify(e.detail);
      list.appendChild(item);
    });
  });
})();
