//! What every served page must be: valid HTML and CSP-clean markup.
//!
//! The validator is html5ever (the HTML5 parsing algorithm browsers use),
//! through `scraper`, which keeps the parse errors html5ever reports
//! (misnested or stray end tags, duplicate attributes, bad character
//! references, a missing doctype, …). On top of the parser, the checks a
//! parser does not make: one `<title>`, `<html lang>`, unique ids, every
//! `<label for>` pointing at an element, `alt` on images, and nothing the
//! page's Content-Security-Policy would block (inline `<script>`, `<style>`,
//! `style=` or `on…=` attributes).

use std::collections::HashSet;

use scraper::{Html, Selector};

/// Every problem of `page` (empty when it is valid), `what` naming it in
/// the messages.
pub(crate) fn problems(what: &str, page: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if !page.starts_with("<!DOCTYPE html>") {
        problems.push(format!("{what}: does not start with <!DOCTYPE html>"));
    }
    let document = Html::parse_document(page);
    for error in &document.errors {
        problems.push(format!("{what}: html5ever: {error}"));
    }
    let select = |css: &str| Selector::parse(css).expect("a valid selector");
    let count = |css: &str| document.select(&select(css)).count();
    if count("head > title") != 1 {
        problems.push(format!(
            "{what}: {} <title> elements",
            count("head > title")
        ));
    }
    if count("html[lang]") != 1 {
        problems.push(format!("{what}: <html> without lang"));
    }
    let mut ids = HashSet::new();
    for element in document.select(&select("[id]")) {
        let id = element.value().attr("id").unwrap_or_default();
        if !ids.insert(id.to_owned()) {
            problems.push(format!("{what}: duplicate id {id:?}"));
        }
    }
    for label in document.select(&select("label[for]")) {
        let target = label.value().attr("for").unwrap_or_default();
        if !ids.contains(target) {
            problems.push(format!("{what}: <label for={target:?}> points at nothing"));
        }
    }
    for image in document.select(&select("img")) {
        if image.value().attr("alt").is_none() {
            problems.push(format!("{what}: <img> without alt"));
        }
    }
    for script in document.select(&select("script")) {
        if script.value().attr("src").is_none() {
            problems.push(format!("{what}: inline <script> (the CSP blocks it)"));
        }
    }
    if count("style") > 0 {
        problems.push(format!("{what}: a <style> element (the CSP blocks it)"));
    }
    for element in document.select(&select("*")) {
        for (name, _) in element.value().attrs() {
            if name == "style" || name.starts_with("on") {
                problems.push(format!(
                    "{what}: <{} {name}=…> (the CSP blocks it)",
                    element.value().name()
                ));
            }
        }
    }
    problems
}

/// Panic listing every problem of `page`.
pub(crate) fn assert_valid_page(what: &str, page: &str) {
    let problems = problems(what, page);
    assert!(
        problems.is_empty(),
        "{} problems:\n{}\n--- page ---\n{page}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_checker_finds_what_it_should() {
    let good = "<!DOCTYPE html><html lang=\"en\"><head><title>t</title></head><body><label for=\"a\">A</label><input id=\"a\"></body></html>";
    assert!(
        problems("good", good).is_empty(),
        "{:?}",
        problems("good", good)
    );
    let bad = "<html><head><title>t</title><title>u</title></head><body><p id=\"x\" id=\"y\"></div><span id=\"a\"></span><i id=\"a\" style=\"color:red\" onclick=\"x()\"></i><label for=\"nope\">n</label><img src=\"i.png\"><script>alert(1)</script></body></html>";
    let found = problems("bad", bad);
    for expected in [
        "DOCTYPE",
        "html5ever",
        "2 <title>",
        "without lang",
        "duplicate id \"a\"",
        "points at nothing",
        "without alt",
        "inline <script>",
        "style=",
        "onclick=",
    ] {
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "{expected} not found in {found:#?}"
        );
    }
}
