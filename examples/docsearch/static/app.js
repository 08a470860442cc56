// Copy buttons: <button class="copy" data-copy="element-id">.
document.addEventListener("click", async (e) => {
  const b = e.target.closest("button.copy");
  if (!b) return;
  const text = document.getElementById(b.dataset.copy).textContent;
  try {
    await navigator.clipboard.writeText(text);
    b.textContent = "Copied";
  } catch {
    b.textContent = "Select and copy";
  }
});
// The assistant's button says it is working while the page loads.
document.addEventListener("submit", (e) => {
  if (e.target.id === "ask-form") {
    const b = document.getElementById("ask");
    b.disabled = true;
    b.textContent = "Searching...";
  }
});
