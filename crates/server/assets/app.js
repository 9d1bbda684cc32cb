// Small enhancements only: every page works without JavaScript.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const text = document.getElementById(button.dataset.copy)?.textContent ?? "";
  navigator.clipboard?.writeText(text).then(() => {
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = "Copy"), 2000);
  });
});

document.addEventListener("submit", (event) => {
  const form = event.target;
  const message = form.dataset?.confirm;
  if (!message) return;
  if (!window.confirm(message)) {
    event.preventDefault();
    return;
  }
  // Confirmed here: the server need not ask again on a page of its own (as it does for a
  // browser without JavaScript).
  if (!form.querySelector("input[name=confirmed]")) {
    const yes = document.createElement("input");
    yes.type = "hidden";
    yes.name = "confirmed";
    yes.value = "yes";
    form.append(yes);
  }
});
