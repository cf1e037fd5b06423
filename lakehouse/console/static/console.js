// Small behaviours shared by every page (no framework, no build step).
(function () {
  // <select data-navigate> goes to the chosen option's value (e.g. a snapshot picker).
  document.addEventListener("change", function (event) {
    var select = event.target;
    if (select.matches && select.matches("select[data-navigate]") && select.value) {
      window.location.href = select.value;
    }
  });
})();
