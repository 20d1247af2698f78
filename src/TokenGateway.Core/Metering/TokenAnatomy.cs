using System.Text.Json.Serialization;

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
/// request-level framing counted once per request (OpenAI's 3-token reply priming, Anthropic's 4-token request
/// overhead) and a structured-output schema (<c>response_format</c> / <c>text.format</c>).
/// </param>
/// <param name="Tools">
/// Tool (function) definitions declared in <c>tools</c> (and legacy <c>functions</c>), in every dialect, with their
/// framing constants; for Anthropic also the tool-use system prompt the provider adds when tools are present.
/// </param>
/// <param name="History">
/// Earlier turns: every user message before the latest user turn and every assistant message (its text, reasoning
/// summaries and the tool calls it made, also those after the latest user turn), except tool results.
/// </param>
/// <param name="ToolResults">
/// Tool results anywhere in the conversation, with their framing: OpenAI <c>tool</c>/<c>function</c> role messages,
/// Responses <c>function_call_output</c> (and other <c>*_output</c>) items, Anthropic <c>tool_result</c> blocks (also
/// inside the latest user message; a user message made only of them brings its message framing along).
/// </param>
/// <param name="LatestUser">
/// The latest user turn: the last user message that carries something other than tool results (an Anthropic user
/// message made only of <c>tool_result</c> blocks is not a user turn), without any tool results inside it. A
/// conversation whose last message is a tool result still has its latest user turn where the user last spoke; the
/// assistant calls after it are <paramref name="History"/> and the results <paramref name="ToolResults"/>. 0 when no
/// user message carries text. For embeddings the whole input is this part.
/// </param>
public readonly record struct TokenAnatomy(int System, int Tools, int History, int ToolResults, int LatestUser)
{
    /// <summary>Σ of the five input parts; equals the pre-flight <see cref="UsageEvent.InputTokensSent"/>.</summary>
    [JsonIgnore]
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
