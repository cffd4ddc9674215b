//! The `geometry` process: measures and simplifies a GeoJSON geometry.
//!
//! Input `geometry` is a GeoJSON geometry, feature or feature collection in
//! WGS 84 longitude/latitude; `tolerance` (degrees) drives the
//! Douglas–Peucker simplification. Outputs: geodesic `area` (m²), geodesic
//! `length` (m; the perimeter of areal geometries), `centroid` (a GeoJSON
//! point), `bbox` (`[minLon, minLat, maxLon, maxLat]`) and `simplified`
//! (a GeoJSON geometry). Ask for a subset with the execute request's
//! `outputs`.
//!
//! Build with `cargo build -p geometry --target wasm32-wasip2 --release`.

use geo::{BoundingRect, Centroid, Geodesic, GeodesicArea, Geometry, Length, LineString, Simplify};
use geojson::GeoJson;
use wasmproc_guest::{
    Inputs, Output, Process, ProcessError, Value, export_process, json, progress,
};

/// The GeoJSON media type of geometry outputs.
const GEOJSON: &str = "application/geo+json";

struct GeometryOps;

impl Process for GeometryOps {
    fn describe() -> Value {
        let geojson_schema = json!({
            "type": "object",
            "required": ["type"],
            "properties": { "type": { "type": "string" } },
            "contentMediaType": GEOJSON
        });
        json!({
            "id": "geometry",
            "version": "1.0.0",
            "title": "Geometry measures",
            "description": "Geodesic area and length, centroid, bounding box and Douglas-Peucker simplification of a GeoJSON geometry in WGS 84.",
            "keywords": ["geojson", "area", "length", "centroid", "bbox", "simplify"],
            "jobControlOptions": ["sync-execute", "async-execute", "dismiss"],
            "outputTransmission": ["value", "reference"],
            "inputs": {
                "geometry": { "title": "Geometry", "description": "A GeoJSON geometry, feature or feature collection (longitude/latitude).", "minOccurs": 1, "schema": geojson_schema },
                "tolerance": { "title": "Simplification tolerance (degrees)", "minOccurs": 0, "schema": { "type": "number", "minimum": 0, "default": 0.0001 } }
            },
            "outputs": {
                "area": { "title": "Geodesic area (m²)", "schema": { "type": "number" } },
                "length": { "title": "Geodesic length or perimeter (m)", "schema": { "type": "number" } },
                "centroid": { "title": "Centroid", "schema": geojson_schema },
                "bbox": { "title": "Bounding box", "schema": { "type": "array", "items": { "type": "number" }, "minItems": 4, "maxItems": 4 } },
                "simplified": { "title": "Simplified geometry", "schema": geojson_schema }
            }
        })
    }

    fn execute(inputs: Inputs) -> Result<Vec<Output>, ProcessError> {
        let raw = inputs
            .value("geometry")
            .cloned()
            .ok_or_else(|| ProcessError::invalid_input("input 'geometry' is required"))?;
        let tolerance = inputs.optional_f64("tolerance")?.unwrap_or(0.0001);
        let geojson = serde_json::from_value::<GeoJson>(raw)
            .map_err(|e| ProcessError::invalid_input(format!("not GeoJSON: {e}")))?;
        let geometry: Geometry<f64> = geojson
            .try_into()
            .map_err(|e| ProcessError::invalid_input(format!("unsupported GeoJSON: {e}")))?;
        progress(50, Some("measuring"));

        let bbox = geometry
            .bounding_rect()
            .map(|r| vec![r.min().x, r.min().y, r.max().x, r.max().y]);
        let centroid = geometry
            .centroid()
            .map(|p| geojson::Geometry::from(&Geometry::Point(p)));
        Ok(vec![
            Output::json("area", &geometry.geodesic_area_unsigned()),
            Output::json("length", &geodesic_length(&geometry)),
            Output::json_as("centroid", GEOJSON, &centroid),
            Output::json("bbox", &bbox),
            Output::json_as(
                "simplified",
                GEOJSON,
                &geojson::Geometry::from(&simplify(&geometry, tolerance)),
            ),
        ])
    }
}

/// Geodesic length of linear geometries; perimeter of areal ones.
fn geodesic_length(geometry: &Geometry<f64>) -> f64 {
    let rings = |p: &geo::Polygon<f64>| -> f64 {
        std::iter::once(p.exterior())
            .chain(p.interiors())
            .map(|ring: &LineString<f64>| Geodesic.length(ring))
            .sum()
    };
    match geometry {
        Geometry::Line(l) => Geodesic.length(l),
        Geometry::LineString(l) => Geodesic.length(l),
        Geometry::MultiLineString(l) => Geodesic.length(l),
        Geometry::Polygon(p) => rings(p),
        Geometry::MultiPolygon(mp) => mp.iter().map(rings).sum(),
        Geometry::Rect(r) => rings(&r.to_polygon()),
        Geometry::Triangle(t) => rings(&t.to_polygon()),
        Geometry::GeometryCollection(c) => c.iter().map(geodesic_length).sum(),
        Geometry::Point(_) | Geometry::MultiPoint(_) => 0.0,
    }
}

/// Douglas–Peucker simplification; points are returned unchanged.
fn simplify(geometry: &Geometry<f64>, tolerance: f64) -> Geometry<f64> {
    match geometry {
        Geometry::LineString(g) => Geometry::LineString(g.simplify(tolerance)),
        Geometry::MultiLineString(g) => Geometry::MultiLineString(g.simplify(tolerance)),
        Geometry::Polygon(g) => Geometry::Polygon(g.simplify(tolerance)),
        Geometry::MultiPolygon(g) => Geometry::MultiPolygon(g.simplify(tolerance)),
        Geometry::GeometryCollection(c) => {
            Geometry::GeometryCollection(c.iter().map(|g| simplify(g, tolerance)).collect())
        }
        other => other.clone(),
    }
}

export_process!(GeometryOps);
