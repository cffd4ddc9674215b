//! GeoJSON drawn as a small inline SVG map: no tiles, no script, no
//! request to anyone.
//!
//! Mechanism: every position of the object (geometry, feature, feature
//! collection, nested collections) is gathered, their bounding box gives
//! the view, and each geometry becomes SVG in an equirectangular
//! projection scaled by the cosine of the middle latitude (so shapes keep
//! their proportions away from the equator), with `y` flipped (north up).
//! Polygons are filled paths (`evenodd`, so holes stay holes), lines are
//! stroked paths, points are circles. Strokes do not scale with the view
//! (`vector-effect`). Only SVG presentation attributes are used, no
//! `style`, so the page's CSP (no inline styles) holds. Numbers are
//! formatted by us and nothing from the GeoJSON is copied into the markup
//! but coordinates, so the SVG is safe to insert unescaped.

use serde_json::Value;

/// Most positions drawn; a larger object is shown as JSON only (a map of
/// a million vertices would be a megabyte of page).
const MAX_POSITIONS: usize = 50_000;
/// Width of the drawing in SVG units; the height follows the shape.
const WIDTH: f64 = 480.0;

/// Whether a JSON value looks like GeoJSON (a geometry, a feature or a
/// feature collection). Only the `type` member is looked at, so the
/// results page tries a map for any such object; [`svg`] then decides
/// whether there is anything to draw.
pub(crate) fn is_geojson(value: &Value) -> bool {
    matches!(
        value.get("type").and_then(Value::as_str),
        Some(
            "Point"
                | "MultiPoint"
                | "LineString"
                | "MultiLineString"
                | "Polygon"
                | "MultiPolygon"
                | "GeometryCollection"
                | "Feature"
                | "FeatureCollection"
        )
    )
}

/// What to draw, in lon/lat, gathered from the whole object before any
/// is drawn (the view depends on all of them).
#[derive(Debug, Default)]
struct Shapes {
    /// Points and multipoints: circles.
    points: Vec<[f64; 2]>,
    /// Line strings: stroked paths.
    lines: Vec<Vec<[f64; 2]>>,
    /// Each polygon: its rings (outer first, then holes), one filled path.
    polygons: Vec<Vec<Vec<[f64; 2]>>>,
    /// Positions gathered so far, against [`MAX_POSITIONS`].
    positions: usize,
}

/// A GeoJSON position `[x, y, …]` as `[x, y]`; anything else (too short,
/// not numbers, not finite) is skipped rather than drawn wrong.
fn position(value: &Value) -> Option<[f64; 2]> {
    let array = value.as_array()?;
    let x = array.first()?.as_f64()?;
    let y = array.get(1)?.as_f64()?;
    (x.is_finite() && y.is_finite()).then_some([x, y])
}

/// The members of a JSON array; none when `value` is not one (malformed
/// GeoJSON draws what it can rather than failing the page).
fn items(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

/// An array of positions (a line, a ring), the bad ones skipped.
fn positions(value: &Value) -> Vec<[f64; 2]> {
    items(value).filter_map(position).collect()
}

/// A polygon's rings: arrays of positions, the bad ones skipped.
fn rings(value: &Value) -> Vec<Vec<[f64; 2]>> {
    items(value).map(positions).collect()
}

impl Shapes {
    /// Gather `value` (any GeoJSON object), `depth` bounding the nesting
    /// of collections. A guest's output may nest collections without end;
    /// 16 levels is far beyond any real data and keeps the recursion off
    /// the end of the stack. Once more than [`MAX_POSITIONS`] are held,
    /// no further object is gathered (one large geometry is still read
    /// whole before that check).
    fn gather(&mut self, value: &Value, depth: usize) {
        if depth > 16 || self.positions > MAX_POSITIONS {
            return;
        }
        let coordinates = value.get("coordinates").unwrap_or(&Value::Null);
        match value.get("type").and_then(Value::as_str).unwrap_or("") {
            "Point" => self.points.extend(position(coordinates)),
            "MultiPoint" => self.points.extend(positions(coordinates)),
            "LineString" => self.lines.push(positions(coordinates)),
            "MultiLineString" => self.lines.extend(items(coordinates).map(positions)),
            "Polygon" => self.polygons.push(rings(coordinates)),
            "MultiPolygon" => self.polygons.extend(items(coordinates).map(rings)),
            "GeometryCollection" => {
                for geometry in value.get("geometries").into_iter().flat_map(items) {
                    self.gather(geometry, depth + 1);
                }
            }
            "Feature" => {
                if let Some(geometry) = value.get("geometry") {
                    self.gather(geometry, depth + 1);
                }
            }
            "FeatureCollection" => {
                for feature in value.get("features").into_iter().flat_map(items) {
                    self.gather(feature, depth + 1);
                }
            }
            _ => {}
        }
        self.positions = self.points.len()
            + self.lines.iter().map(Vec::len).sum::<usize>()
            + self.polygons.iter().flatten().map(Vec::len).sum::<usize>();
    }

    /// Every position gathered, for the bounding box.
    fn all(&self) -> impl Iterator<Item = &[f64; 2]> {
        self.points
            .iter()
            .chain(self.lines.iter().flatten())
            .chain(self.polygons.iter().flatten().flatten())
    }
}

/// The SVG map of a GeoJSON value, or `None` when there is nothing to
/// draw or too much. The `title` (an output id) goes into the map's
/// accessible label, filtered to harmless characters; the label also
/// gives the extent in degrees, which a screen reader can say.
///
/// The drawing is `WIDTH` units wide and between a quarter and one and a
/// half times that high, whatever the extent, so a long thin shape still
/// gets a readable map. Coordinates are written to one decimal of an SVG
/// unit, which is finer than a screen pixel at the map's size.
pub(crate) fn svg(value: &Value, title: &str) -> Option<String> {
    let mut shapes = Shapes::default();
    shapes.gather(value, 0);
    if shapes.positions == 0 || shapes.positions > MAX_POSITIONS {
        return None;
    }
    let (mut min_x, mut min_y, mut max_x, mut max_y) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for [x, y] in shapes.all() {
        min_x = min_x.min(*x);
        max_x = max_x.max(*x);
        min_y = min_y.min(*y);
        max_y = max_y.max(*y);
    }
    // A single point (or a line along one axis) has no extent on an axis:
    // give that axis a small one around its middle, so the shape sits in
    // the middle of the map rather than in a corner.
    const MIN_SPAN_DEGREES: f64 = 0.01;
    for (min, max) in [(&mut min_x, &mut max_x), (&mut min_y, &mut max_y)] {
        if *max - *min < MIN_SPAN_DEGREES {
            let middle = (*min + *max) / 2.0;
            *min = middle - MIN_SPAN_DEGREES / 2.0;
            *max = middle + MIN_SPAN_DEGREES / 2.0;
        }
    }
    let shrink = ((min_y + max_y) / 2.0).to_radians().cos().clamp(0.05, 1.0);
    // A point, or a vertical/horizontal line, still gets an area.
    let span_x = ((max_x - min_x) * shrink).max(1e-9);
    let span_y = (max_y - min_y).max(1e-9);
    let (span_x, span_y) = (span_x.max(span_y / 20.0), span_y.max(span_x / 20.0));
    let height = (WIDTH * span_y / span_x).clamp(WIDTH / 4.0, WIDTH * 1.5);
    // Units of margin inside the frame, so strokes at the edge show whole;
    // one scale for both axes keeps the proportions, and the offsets
    // centre the shape on the axis it does not fill.
    let margin = 12.0;
    let scale = ((WIDTH - 2.0 * margin) / span_x).min((height - 2.0 * margin) / span_y);
    let offset_x = (WIDTH - span_x * scale) / 2.0;
    let offset_y = (height - span_y * scale) / 2.0;
    let project = |[x, y]: [f64; 2]| {
        (
            offset_x + (x - min_x) * shrink * scale,
            offset_y + (max_y - y) * scale,
        )
    };
    let path = |ring: &[[f64; 2]], close: bool| {
        let mut d = String::new();
        for (i, p) in ring.iter().enumerate() {
            let (x, y) = project(*p);
            d.push_str(&format!("{}{x:.1} {y:.1}", if i == 0 { "M" } else { "L" }));
        }
        if close && !d.is_empty() {
            d.push('Z');
        }
        d
    };
    let mut body = String::new();
    for polygon in &shapes.polygons {
        let d: String = polygon.iter().map(|ring| path(ring, true)).collect();
        body.push_str(&format!(
            r##"<path d="{d}" fill="#2f81f7" fill-opacity="0.35" fill-rule="evenodd" stroke="#0b5cad" stroke-width="2" vector-effect="non-scaling-stroke"/>"##
        ));
    }
    for line in &shapes.lines {
        body.push_str(&format!(
            r##"<path d="{}" fill="none" stroke="#c4291c" stroke-width="2.5" vector-effect="non-scaling-stroke"/>"##,
            path(line, false)
        ));
    }
    for point in &shapes.points {
        let (x, y) = project(*point);
        body.push_str(&format!(
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="5" fill="#c4291c" stroke="#ffffff" stroke-width="1.5"/>"##
        ));
    }
    let label = format!(
        "Map of {}: longitude {min_x:.5} to {max_x:.5}, latitude {min_y:.5} to {max_y:.5}",
        sanitize(title)
    );
    Some(format!(
        r##"<svg class="map" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH:.0} {height:.0}" role="img" aria-label="{label}"><rect x="0" y="0" width="{WIDTH:.0}" height="{height:.0}" fill="#eef4f8"/>{body}</svg>"##
    ))
}

/// An output id made safe for an attribute: letters, digits and a few
/// marks only.
fn sanitize(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '))
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn polygons_lines_and_points_are_drawn_inside_the_view() {
        let collection = json!({"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"name": "<script>"}, "geometry":
                {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}},
            {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [0.5, 0.5]}}
        ]});
        assert!(is_geojson(&collection));
        let svg = svg(&collection, "out<put>").expect("something to draw");
        assert!(svg.starts_with("<svg"), "{svg}");
        assert_eq!(svg.matches("<path").count(), 2, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 1, "{svg}");
        assert!(!svg.contains("script") && !svg.contains("<put>"), "{svg}");
        for number in svg
            .split(['M', 'L', ' ', '"', 'Z'])
            .filter_map(|t| t.parse::<f64>().ok())
        {
            assert!((0.0..=WIDTH * 1.5).contains(&number), "{number} in {svg}");
        }
    }

    #[test]
    fn a_single_point_is_centred_and_nothing_is_not_drawn() {
        let point = svg(&json!({"type": "Point", "coordinates": [5, 50]}), "p").unwrap();
        let cx: f64 = point
            .split("cx=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert!((cx - WIDTH / 2.0).abs() < 1.0, "{point}");
        assert!(svg(&json!({"type": "Point", "coordinates": []}), "p").is_none());
        assert!(!is_geojson(&json!({"type": "Banana"})));
        assert!(!is_geojson(&json!(3)));
    }
}
