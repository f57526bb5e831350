//! What the devstack reads out of template.yaml: the resources to create in the emulator and
//! which function serves which route, queue and schedule. Reading the template itself keeps
//! local names and wiring identical to what AWS gets.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use serde_yaml::{Mapping, Value};

#[derive(Debug, Clone)]
pub struct Template {
    resources: Mapping,
    global_env: Mapping,
}

/// A function environment variable as the template writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    Literal(String),
    /// `!Ref X`: a resource's physical name or a parameter's value.
    Ref(String),
    /// Anything else (`!Sub` with a dynamic reference, ...): not reproducible locally.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    pub method: String,
    pub path: String,
}

/// One `AWS::Serverless::Function` as the devstack needs it.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub logical_id: String,
    pub binary: String,
    pub http_routes: Vec<HttpRoute>,
    /// Logical ids of the queues feeding it.
    pub queues: Vec<String>,
    pub schedules: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct QueueSpec {
    pub logical_id: String,
    pub name: String,
    pub attributes: BTreeMap<String, String>,
    /// (dead-letter queue logical id, maxReceiveCount)
    pub redrive: Option<(String, u32)>,
}

#[derive(Debug, Clone)]
pub struct RuleSpec {
    pub name: String,
    pub event_pattern: serde_json::Value,
    /// (target id, queue logical id)
    pub queue_targets: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct TableSpec {
    pub logical_id: String,
    pub name: String,
    pub key_schema: Vec<(String, String)>,
    pub attributes: Vec<(String, String)>,
    pub ttl_attribute: Option<String>,
}

/// CloudFormation's short forms (`!Sub`, `!Ref`, `!GetAtt`) arrive as tagged YAML values.
fn tagged<'a>(value: &'a Value, tag: &str) -> Option<&'a Value> {
    match value {
        Value::Tagged(t) if t.tag == tag => Some(&t.value),
        _ => None,
    }
}

impl Template {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let doc: Value = serde_yaml::from_str(text).context("template.yaml is not YAML")?;
        let resources = doc
            .get("Resources")
            .and_then(Value::as_mapping)
            .context("template.yaml has no Resources")?
            .clone();
        let global_env = doc
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .and_then(|f| f.get("Environment"))
            .and_then(|e| e.get("Variables"))
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        Ok(Self {
            resources,
            global_env,
        })
    }

    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        Self::parse(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
        )
    }

    fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (String, &'a Value)> + 'a {
        self.resources
            .iter()
            .filter(move |(_, res)| res.get("Type").and_then(Value::as_str) == Some(kind))
            .map(|(id, res)| (id.as_str().unwrap_or_default().to_string(), res))
    }

    fn props(res: &Value) -> &Value {
        static EMPTY: Value = Value::Null;
        res.get("Properties").unwrap_or(&EMPTY)
    }

    /// `!Sub "${AWS::StackName}-suffix"` → `<stack>-suffix`.
    pub fn physical_name(value: Option<&Value>, stack: &str) -> anyhow::Result<String> {
        let Some(sub) = value
            .and_then(|v| tagged(v, "!Sub"))
            .and_then(Value::as_str)
        else {
            bail!("a physical name must be !Sub \"${{AWS::StackName}}-...\"");
        };
        let Some(suffix) = sub.strip_prefix("${AWS::StackName}") else {
            bail!("{sub} does not start with ${{AWS::StackName}}");
        };
        if suffix.contains("${") {
            bail!("{sub} uses a substitution the local provisioner does not know");
        }
        Ok(format!("{stack}{suffix}"))
    }

    fn get_att_arn(value: &Value) -> Option<String> {
        tagged(value, "!GetAtt")
            .and_then(Value::as_str)
            .and_then(|s| s.strip_suffix(".Arn"))
            .map(str::to_string)
    }

    pub fn event_bus_name(&self, stack: &str) -> anyhow::Result<String> {
        let (_, bus) = self
            .of_type("AWS::Events::EventBus")
            .next()
            .context("the template declares no event bus")?;
        Self::physical_name(Self::props(bus).get("Name"), stack)
    }

    pub fn queues(&self, stack: &str) -> anyhow::Result<Vec<QueueSpec>> {
        self.of_type("AWS::SQS::Queue")
            .map(|(id, res)| {
                let props = Self::props(res);
                let mut attributes = BTreeMap::new();
                for key in [
                    "VisibilityTimeout",
                    "MessageRetentionPeriod",
                    "DelaySeconds",
                    "ReceiveMessageWaitTimeSeconds",
                ] {
                    if let Some(v) = props.get(key) {
                        let v = match v {
                            Value::Number(n) => n.to_string(),
                            Value::String(s) => s.clone(),
                            _ => bail!("{id}.{key} must be a literal"),
                        };
                        attributes.insert(key.to_string(), v);
                    }
                }
                let redrive = match props.get("RedrivePolicy") {
                    None => None,
                    Some(p) => {
                        let dlq = p
                            .get("deadLetterTargetArn")
                            .and_then(Self::get_att_arn)
                            .with_context(|| {
                                format!("{id} redrives to something other than !GetAtt <Queue>.Arn")
                            })?;
                        let max = p
                            .get("maxReceiveCount")
                            .and_then(Value::as_u64)
                            .unwrap_or(5) as u32;
                        Some((dlq, max))
                    }
                };
                Ok(QueueSpec {
                    name: Self::physical_name(props.get("QueueName"), stack)?,
                    logical_id: id,
                    attributes,
                    redrive,
                })
            })
            .collect()
    }

    pub fn rules(&self, stack: &str) -> anyhow::Result<Vec<RuleSpec>> {
        self.of_type("AWS::Events::Rule")
            .filter(|(_, res)| Self::props(res).get("EventPattern").is_some())
            .map(|(id, res)| {
                let props = Self::props(res);
                let event_pattern = serde_json::to_value(props.get("EventPattern"))
                    .with_context(|| format!("{id}.EventPattern"))?;
                let queue_targets = props
                    .get("Targets")
                    .and_then(Value::as_sequence)
                    .into_iter()
                    .flatten()
                    .filter_map(|t| {
                        let target_id = t.get("Id")?.as_str()?.to_string();
                        Some((target_id, Self::get_att_arn(t.get("Arn")?)?))
                    })
                    .collect();
                Ok(RuleSpec {
                    name: Self::physical_name(props.get("Name"), stack)?,
                    event_pattern,
                    queue_targets,
                })
            })
            .collect()
    }

    pub fn tables(&self, stack: &str) -> anyhow::Result<Vec<TableSpec>> {
        self.of_type("AWS::DynamoDB::Table")
            .map(|(id, res)| {
                let props = Self::props(res);
                let pairs = |key: &str, a: &str, b: &str| -> Vec<(String, String)> {
                    props
                        .get(key)
                        .and_then(Value::as_sequence)
                        .into_iter()
                        .flatten()
                        .filter_map(|e| {
                            Some((
                                e.get(a)?.as_str()?.to_string(),
                                e.get(b)?.as_str()?.to_string(),
                            ))
                        })
                        .collect()
                };
                let ttl_attribute = props
                    .get("TimeToLiveSpecification")
                    .filter(|t| t.get("Enabled").and_then(Value::as_bool) == Some(true))
                    .and_then(|t| t.get("AttributeName"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                Ok(TableSpec {
                    name: Self::physical_name(props.get("TableName"), stack)?,
                    key_schema: pairs("KeySchema", "AttributeName", "KeyType"),
                    attributes: pairs("AttributeDefinitions", "AttributeName", "AttributeType"),
                    ttl_attribute,
                    logical_id: id,
                })
            })
            .collect()
    }

    /// Whether the template declares an SES identity (its address is a parameter).
    pub fn has_mail_identity(&self) -> bool {
        self.of_type("AWS::SES::EmailIdentity").next().is_some()
    }

    /// A function's environment: the global variables overlaid with its own.
    pub fn function_env(&self, logical_id: &str) -> Vec<(String, EnvValue)> {
        let own = self
            .resources
            .get(logical_id)
            .map(Self::props)
            .and_then(|p| p.get("Environment"))
            .and_then(|e| e.get("Variables"))
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        let mut vars: BTreeMap<String, EnvValue> = BTreeMap::new();
        for (name, value) in self.global_env.iter().chain(own.iter()) {
            let Some(name) = name.as_str() else { continue };
            let value = match value {
                Value::String(s) => EnvValue::Literal(s.clone()),
                Value::Number(n) => EnvValue::Literal(n.to_string()),
                Value::Bool(b) => EnvValue::Literal(b.to_string()),
                other => match tagged(other, "!Ref").and_then(Value::as_str) {
                    Some(r) => EnvValue::Ref(r.to_string()),
                    None => EnvValue::Other,
                },
            };
            vars.insert(name.to_string(), value);
        }
        vars.into_iter().collect()
    }

    pub fn functions(&self) -> Vec<FunctionSpec> {
        self.of_type("AWS::Serverless::Function")
            .map(|(id, res)| {
                let binary = res
                    .get("Metadata")
                    .and_then(|m| m.get("BuildProperties"))
                    .and_then(|b| b.get("Binary"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let mut spec = FunctionSpec {
                    logical_id: id,
                    binary,
                    http_routes: vec![],
                    queues: vec![],
                    schedules: vec![],
                };
                let events = Self::props(res)
                    .get("Events")
                    .and_then(Value::as_mapping)
                    .cloned()
                    .unwrap_or_default();
                for (_, event) in events {
                    let props = Self::props(&event);
                    match event.get("Type").and_then(Value::as_str) {
                        Some("HttpApi") => spec.http_routes.push(HttpRoute {
                            method: props
                                .get("Method")
                                .and_then(Value::as_str)
                                .unwrap_or("ANY")
                                .to_uppercase(),
                            path: props
                                .get("Path")
                                .and_then(Value::as_str)
                                .unwrap_or("/")
                                .to_string(),
                        }),
                        Some("SQS") => {
                            if let Some(q) = props.get("Queue").and_then(Self::get_att_arn) {
                                spec.queues.push(q)
                            }
                        }
                        Some("Schedule") => {
                            if let Some(s) = props.get("Schedule").and_then(Value::as_str) {
                                spec.schedules.push(s.to_string())
                            }
                        }
                        _ => {}
                    }
                }
                spec
            })
            .collect()
    }
}

/// `rate(1 minute)`, `rate(5 minutes)`, `rate(1 hour)` → seconds.
pub fn rate_seconds(expression: &str) -> Option<u64> {
    let inner = expression.strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.split_once(' ')?;
    let n: u64 = n.parse().ok()?;
    let unit = unit.trim_end_matches('s');
    Some(
        n * match unit {
            "minute" => 60,
            "hour" => 3600,
            "day" => 86_400,
            _ => return None,
        },
    )
}
