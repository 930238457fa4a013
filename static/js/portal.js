// Progressive enhancement only: every page works without this file.
// "Tout sélectionner" for the document list: checks or unchecks every document box of its form.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-select-all]").forEach(function (box) {
    box.hidden = false;
    var wrapper = box.closest("[hidden]");
    if (wrapper) { wrapper.hidden = false; }
    box.addEventListener("change", function () {
      var form = box.form;
      form.querySelectorAll('input[name="documents"]').forEach(function (item) { item.checked = box.checked; });
    });
  });
});
