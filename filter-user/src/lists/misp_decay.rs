//! MISP decaying models: when an attribute's score falls below its model's threshold. A search
//! made with `includeDecayScore` (and `includeFullModel` for the parameters) gives each
//! attribute a `decay_score` a model: `{"score", "base_score", "decayed", "DecayingModel":
//! {"parameters": {"lifetime" (days), "decay_speed", "threshold"}}}`. MISP's polynomial model
//! scores an attribute `base * (1 - (t / lifetime)^(1 / decay_speed))` at `t` after its
//! `timestamp`, so it reaches the threshold at `lifetime * (1 - threshold / base)^decay_speed`.
//! An attribute decays when every model says so: at the latest of those moments.

use serde_json::Value;

/// A number MISP may write as a JSON number or a string.
fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// True when the attribute's decay score says every model has it decayed (the flag MISP
/// computed when it answered).
pub fn flagged(a: &Value) -> bool {
    let scores = a.get("decay_score").and_then(Value::as_array).filter(|s| !s.is_empty());
    let by_model = scores.is_some_and(|s| s.iter().all(|m| super::misp::truthy(m.get("decayed"))));
    by_model || super::misp::truthy(a.get("decayed"))
}

/// When (Unix seconds) the attribute has decayed under every model whose parameters it
/// carries; `None` without a timestamp or a model with parameters.
pub fn decays_at(a: &Value) -> Option<u64> {
    let since = number(a.get("timestamp"))?;
    let scores = a.get("decay_score")?.as_array()?;
    let mut latest: Option<f64> = None;
    for m in scores {
        let p = m.get("DecayingModel")?.get("parameters")?;
        let base = number(m.get("base_score")).or(number(p.get("default_base_score")))?;
        let lifetime = number(p.get("lifetime"))? * 86_400.0;
        let (speed, threshold) = (number(p.get("decay_speed"))?, number(p.get("threshold"))?);
        let after = if base <= threshold || base <= 0.0 {
            0.0
        } else {
            lifetime * (1.0 - threshold / base).powf(speed)
        };
        latest = Some(latest.map_or(since + after, |l| l.max(since + after)));
    }
    latest.map(|t| t.max(0.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attribute(timestamp: u64, models: &[(f64, f64, f64, f64)]) -> Value {
        let scores: Vec<Value> = models
            .iter()
            .map(|(base, lifetime, speed, threshold)| {
                serde_json::json!({"score": 1.0, "base_score": base, "decayed": false,
                    "DecayingModel": {"name": "m", "parameters":
                        {"lifetime": lifetime, "decay_speed": speed, "threshold": threshold}}})
            })
            .collect();
        serde_json::json!({"timestamp": timestamp.to_string(), "decay_score": scores})
    }

    #[test]
    fn an_attribute_decays_when_its_last_model_reaches_the_threshold() {
        // Linear (speed 1), from 100 to the threshold 50 in half of 30 days: 15 days.
        let a = attribute(1_000_000, &[(100.0, 30.0, 1.0, 50.0)]);
        assert_eq!(decays_at(&a), Some(1_000_000 + 15 * 86_400));
        // Two models: the later one decides.
        let a = attribute(1_000_000, &[(100.0, 30.0, 1.0, 50.0), (100.0, 60.0, 1.0, 50.0)]);
        assert_eq!(decays_at(&a), Some(1_000_000 + 30 * 86_400));
        // A base score already at the threshold: decayed from its timestamp on.
        assert_eq!(decays_at(&attribute(7, &[(40.0, 30.0, 1.0, 50.0)])), Some(7));
        // No parameters (a search without includeFullModel): not computed.
        let bare = serde_json::json!({"timestamp": "5", "decay_score": [{"decayed": false}]});
        assert_eq!(decays_at(&bare), None);
        assert!(!flagged(&bare));
        assert!(flagged(&serde_json::json!({"decay_score": [{"decayed": true}]})));
    }
}
