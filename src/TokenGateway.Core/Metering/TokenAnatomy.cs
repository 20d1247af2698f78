namespace TokenGateway.Core.Metering;

/// <summary>
/// Where one request's input tokens went, by part of the prompt, counted pre-flight on the body as forwarded (after
/// optimization) with the same tokenizer and the same per-message framing as <see cref="UsageEvent.InputTokensSent"/>.
/// </summary>
/// <remarks>
/// The five parts sum exactly to <see cref="UsageEvent.InputTokensSent"/> (see <see cref="Total"/>; docs/metering.md
/// "Token anatomy" says which framing overhead is attributed to which part). Output and reasoning are not here: they
/// come from the billed <see cref="TokenUsage"/> (<see cref="TokenUsage.OutputTokens"/>, which includes
/// <see cref="TokenUsage.ReasoningTokens"/>).
/// </remarks>
/// <param name="System">
/// System and developer instructions: OpenAI chat <c>system</c>/<c>developer</c> messages, Responses
/// <c>instructions</c> and <c>system</c>/<c>developer</c> input items, Anthropic top-level <c>system</c>; plus the
/// request-level framing the counter adds once per request (reply priming).
/// </param>
/// <param name="Tools">Tool (function) definitions declared in <c>tools</c>, in every dialect.</param>
/// <param name="History">
/// Earlier turns: every user and assistant message before the latest user turn (assistant text and the tool calls
/// it made), except tool results.
/// </param>
/// <param name="ToolResults">
/// Tool results anywhere in the conversation: OpenAI <c>tool</c>/<c>function</c> role messages, Responses
/// <c>function_call_output</c> items, Anthropic <c>tool_result</c> blocks (also inside the latest user message).
/// </param>
/// <param name="LatestUser">
/// The latest user turn: the last user message that carries something other than tool results, and everything
/// after it that is not a tool result. A conversation whose last message is a tool result still has its latest
/// user turn where the user last spoke; the tool results after it count as <paramref name="ToolResults"/>.
/// </param>
public readonly record struct TokenAnatomy(int System, int Tools, int History, int ToolResults, int LatestUser)
{
    /// <summary>Σ of the five input parts; equals the pre-flight <see cref="UsageEvent.InputTokensSent"/>.</summary>
    public long Total => (long)System + Tools + History + ToolResults + LatestUser;
}

/// <summary>
/// Token anatomy summed per team and model over a time window (<see cref="IUsageQueryService.GetTokenAnatomyAsync"/>).
/// </summary>
/// <param name="TeamId">Team id ('' for events without a team).</param>
/// <param name="Model">Canonical model ('' for events without a model).</param>
/// <param name="Requests">Events in the window that carry an anatomy (events without one are not counted anywhere in this row).</param>
/// <param name="System">Σ <see cref="TokenAnatomy.System"/>.</param>
/// <param name="Tools">Σ <see cref="TokenAnatomy.Tools"/>.</param>
/// <param name="History">Σ <see cref="TokenAnatomy.History"/>.</param>
/// <param name="ToolResults">Σ <see cref="TokenAnatomy.ToolResults"/>.</param>
/// <param name="LatestUser">Σ <see cref="TokenAnatomy.LatestUser"/>.</param>
/// <param name="Output">Σ billed <see cref="TokenUsage.OutputTokens"/> of those events (includes reasoning).</param>
/// <param name="Reasoning">Σ billed <see cref="TokenUsage.ReasoningTokens"/> of those events.</param>
/// <param name="CostUsd">Σ <see cref="UsageEvent.CostUsd"/> of those events.</param>
public sealed record TokenAnatomyRollup(
    string TeamId,
    string Model,
    long Requests,
    long System,
    long Tools,
    long History,
    long ToolResults,
    long LatestUser,
    long Output,
    long Reasoning,
    decimal CostUsd);
