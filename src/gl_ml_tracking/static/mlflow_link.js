// Turns MLflow's UI fragment (#/experiments/<id>/runs/<run_id>) into our page.
(function () {
  var box = document.getElementById("glml-mlflow-link");
  if (!box) return;
  var hash = window.location.hash || "";
  var run = hash.match(/^#\/experiments\/\d+\/runs\/([0-9a-fA-F]{32})/);
  var experiment = hash.match(/^#\/experiments\/(\d+)/);
  var target = box.getAttribute("data-experiments-url");
  if (run) {
    target = box.getAttribute("data-run-url").replace("RUN_ID", run[1].toLowerCase());
  } else if (experiment) {
    target = target.replace(/\/$/, "") + "/" + experiment[1];
  }
  window.location.replace(target);
})();
