// The Query page: Ctrl+Enter (Cmd+Enter) runs; a history entry goes back into the editor.
(function () {
  var form = document.getElementById("query-form");
  var editor = document.getElementById("sql");
  if (!form || !editor) { return; }
  editor.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", function () {
    document.getElementById("running").hidden = false;
    document.getElementById("run").disabled = true;
  });
  document.querySelectorAll("a.history-query").forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      editor.value = link.getAttribute("data-sql");
      var engine = document.getElementById("engine");
      engine.value = link.getAttribute("data-engine");
      document.getElementById("as-of").value = link.getAttribute("data-as-of") || "";
      document.getElementById("native").checked = link.getAttribute("data-native") === "true";
      editor.focus();
      window.scrollTo(0, 0);
    });
  });
})();
