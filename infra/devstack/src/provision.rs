//! Creates, in the AWS emulator, the bus, queues, rules, tables and mail identity that
//! template.yaml declares, named as CloudFormation would name them for stack `stack`.
//! Idempotent: running it again changes nothing.

use std::collections::HashMap;

use anyhow::Context;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use aws_sdk_eventbridge::types::Target;
use aws_sdk_sqs::types::QueueAttributeName;
use lectern_shared::aws::SdkConfig;

use crate::template::Template;

#[derive(Debug, Clone)]
pub struct Queue {
    pub name: String,
    pub url: String,
    pub arn: String,
}

/// The physical names of what was created, by logical id.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub stack: String,
    pub event_bus: String,
    pub queues: HashMap<String, Queue>,
    pub tables: HashMap<String, String>,
    pub mail_from: String,
}

fn already_exists<E: std::fmt::Debug>(err: &E) -> bool {
    let text = format!("{err:?}");
    text.contains("AlreadyExists") || text.contains("ResourceInUse")
}

pub async fn provision(
    sdk: &SdkConfig,
    template: &Template,
    stack: &str,
    mail_from: &str,
) -> anyhow::Result<Provisioned> {
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);

    let event_bus = template.event_bus_name(stack)?;
    if let Err(err) = events.create_event_bus().name(&event_bus).send().await
        && !already_exists(&err)
    {
        return Err(err).context("creating the event bus");
    }

    // Dead-letter queues first, so that redrive policies can name them.
    let mut specs = template.queues(stack)?;
    specs.sort_by_key(|q| q.redrive.is_some());
    let mut queues: HashMap<String, Queue> = HashMap::new();
    for spec in specs {
        let mut create = sqs.create_queue().queue_name(&spec.name);
        for (key, value) in &spec.attributes {
            create = create.attributes(QueueAttributeName::from(key.as_str()), value);
        }
        if let Some((dlq, max)) = &spec.redrive {
            let dlq_arn = &queues
                .get(dlq)
                .with_context(|| format!("{} redrives to unknown {dlq}", spec.logical_id))?
                .arn;
            let policy =
                serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max })
                    .to_string();
            create = create.attributes(QueueAttributeName::RedrivePolicy, policy);
        }
        let url = create
            .send()
            .await
            .with_context(|| format!("creating queue {}", spec.name))?
            .queue_url
            .context("no queue url")?;
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await?
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .context("no queue arn")?;
        queues.insert(
            spec.logical_id.clone(),
            Queue {
                name: spec.name,
                url,
                arn,
            },
        );
    }

    for rule in template.rules(stack)? {
        events
            .put_rule()
            .name(&rule.name)
            .event_bus_name(&event_bus)
            .event_pattern(rule.event_pattern.to_string())
            .send()
            .await
            .with_context(|| format!("creating rule {}", rule.name))?;
        for (target_id, queue) in &rule.queue_targets {
            let arn = &queues
                .get(queue)
                .with_context(|| format!("rule {} targets unknown {queue}", rule.name))?
                .arn;
            events
                .put_targets()
                .rule(&rule.name)
                .event_bus_name(&event_bus)
                .targets(Target::builder().id(target_id).arn(arn).build()?)
                .send()
                .await
                .with_context(|| format!("targeting rule {}", rule.name))?;
        }
    }

    let mut tables = HashMap::new();
    for table in template.tables(stack)? {
        let mut create = dynamo
            .create_table()
            .table_name(&table.name)
            .billing_mode(BillingMode::PayPerRequest);
        for (name, kind) in &table.key_schema {
            create = create.key_schema(
                KeySchemaElement::builder()
                    .attribute_name(name)
                    .key_type(KeyType::from(kind.as_str()))
                    .build()?,
            );
        }
        for (name, kind) in &table.attributes {
            create = create.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::from(kind.as_str()))
                    .build()?,
            );
        }
        match create.send().await {
            Ok(_) => {
                if let Some(attribute) = &table.ttl_attribute {
                    dynamo
                        .update_time_to_live()
                        .table_name(&table.name)
                        .time_to_live_specification(
                            TimeToLiveSpecification::builder()
                                .attribute_name(attribute)
                                .enabled(true)
                                .build()?,
                        )
                        .send()
                        .await
                        .with_context(|| format!("enabling TTL on {}", table.name))?;
                }
            }
            Err(err) if already_exists(&err) => {}
            Err(err) => return Err(err).with_context(|| format!("creating table {}", table.name)),
        }
        tables.insert(table.logical_id, table.name);
    }

    if template.has_mail_identity() {
        let ses = aws_sdk_sesv2::Client::new(sdk);
        if let Err(err) = ses
            .create_email_identity()
            .email_identity(mail_from)
            .send()
            .await
            && !already_exists(&err)
        {
            return Err(err).context("creating the mail identity");
        }
    }

    Ok(Provisioned {
        stack: stack.to_string(),
        event_bus,
        queues,
        tables,
        mail_from: mail_from.to_string(),
    })
}
