/**
 * Llama 4's instruct chat format (spec §4.3). Images are written as the `<|image|>` placeholder
 * that the image path expands into tiles.
 */
export type ChatContent = string | Array<{ type: "text"; text: string } | { type: "image"; image?: unknown }>;
export interface ChatMessage {
  role: "system" | "user" | "assistant" | "ipython" | string;
  content: ChatContent;
}

export function applyChatTemplate(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean; bos?: boolean } = {}): string {
  const { addGenerationPrompt = true, bos = true } = opts;
  let out = bos ? "<|begin_of_text|>" : "";
  messages.forEach((m) => {
    let text =
      typeof m.content === "string"
        ? m.content
        : m.content.map((c) => (c.type === "image" ? "<|image|>" : c.text)).join("");
    // The HF template trims the system message only.
    if (m.role === "system") text = text.trim();
    out += `<|header_start|>${m.role}<|header_end|>\n\n${text}<|eot|>`;
  });
  if (addGenerationPrompt) out += "<|header_start|>assistant<|header_end|>\n\n";
  return out;
}
