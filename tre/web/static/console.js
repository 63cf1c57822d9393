// Progressive enhancement only: every page works without it.
// After a refused form, move keyboard focus to the first error so screen readers announce it.
document.addEventListener("DOMContentLoaded", function () {
  var first = document.querySelector("[aria-invalid='true'], .error-box");
  if (first) {
    if (!first.hasAttribute("tabindex") && first.tagName !== "INPUT" && first.tagName !== "TEXTAREA" && first.tagName !== "SELECT") {
      first.setAttribute("tabindex", "-1");
    }
    first.focus();
  }
});
