//! `/api/tasks`: the scheduled tasks of every instance, and running one now.

use crate::server::actions;
use crate::server::error::{ApiError, ErrorBody};
use crate::server::AppState;
use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// A scheduled task of an instance, with its last run.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduledTaskDoc {
    pub instance: String,
    pub task: String,
    pub description: String,
    /// Tasks run only for enabled instances.
    pub enabled: bool,
    pub interval_s: u64,
    pub start_delay_s: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<TaskRunDoc>,
}

/// One run of a task.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskRunDoc {
    pub started_ms: i64,
    pub duration_ms: i64,
    pub ok: bool,
    pub summary: String,
    /// When the scheduler plans the next run, if a server runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_ms: Option<i64>,
}

impl From<crate::services::state::TaskRun> for TaskRunDoc {
    fn from(r: crate::services::state::TaskRun) -> Self {
        TaskRunDoc {
            started_ms: r.started_ms,
            duration_ms: r.duration_ms,
            ok: r.ok,
            summary: r.summary,
            next_ms: r.next_ms,
        }
    }
}

/// Scheduled tasks of every instance, with their timing and last run.
#[utoipa::path(get, path = "/api/tasks", tag = "tasks",
    responses((status = 200, body = Vec<ScheduledTaskDoc>)))]
pub(super) async fn tasks(
    State(app): State<AppState>,
) -> Result<Json<Vec<ScheduledTaskDoc>>, ApiError> {
    let tasks = app.engine.scheduled_tasks().map_err(|e| match e {
        crate::catalog::CatalogError::Config(c) => ApiError::from(c),
        state @ crate::catalog::CatalogError::State(_) => ApiError::internal(state),
    })?;
    Ok(Json(
        tasks
            .into_iter()
            .map(|t| ScheduledTaskDoc {
                instance: t.instance.to_string(),
                task: t.task,
                description: t.description,
                enabled: t.enabled,
                interval_s: t.interval.as_secs(),
                start_delay_s: t.start_delay.as_secs(),
                last_run: t.last_run.map(TaskRunDoc::from),
            })
            .collect(),
    ))
}

/// Runs one task of an instance now (unless a run is in progress) and returns the run.
#[utoipa::path(post, path = "/api/instances/{id}/tasks/{task}/run", tag = "tasks",
    params(("id" = String, Path, description = "Instance id"),
        ("task" = String, Path, description = "Task name, as the plugin declares it")),
    responses((status = 200, description = "the run, failed or not", body = TaskRunDoc),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn run_task(
    State(app): State<AppState>,
    Path((id, task)): Path<(String, String)>,
) -> Result<Json<TaskRunDoc>, ApiError> {
    let id = actions::instance_id(&id)?;
    let run = app.engine.run_task(&id, &task, None).await?;
    Ok(Json(run.into()))
}
