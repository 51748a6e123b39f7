"""Renders chat templates with jinja2 exactly as transformers' apply_chat_template does
(trim_blocks, lstrip_blocks, raise_exception), so the Swift renderer can be checked against
it. Writes Tests/Fixtures/chat/templates.json. Local use only: CI never runs Python."""
import json
from pathlib import Path

import jinja2

TEMPLATES = {
    # ChatML with a default system prompt (the template SmolLM2-135M-Instruct's GGUF carries).
    "chatml-default-system": (
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
        "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
        "{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    ),
    # Header-style turns with BOS, a trimmed body and multi-line block tags.
    "headers": (
        "{{ bos_token }}\n"
        "{% for message in messages %}\n"
        "    {%- set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' %}\n"
        "    {{- content }}\n"
        "{% endfor %}\n"
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
    ),
    # [INST] turns that must alternate, with a system message folded into the first user turn.
    "inst-alternating": (
        "{%- if messages[0]['role'] == 'system' %}{%- set system = messages[0]['content'] %}{%- set loop_messages = messages[1:] %}"
        "{%- else %}{%- set system = none %}{%- set loop_messages = messages %}{%- endif %}"
        "{{- bos_token }}"
        "{%- for message in loop_messages %}"
        "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{- raise_exception('roles must alternate user/assistant/user/...') }}{%- endif %}"
        "{%- if message['role'] == 'user' %}"
        "{%- if loop.first and system is not none %}{{- '[INST] ' + system + '\\n\\n' + message['content'] + ' [/INST]' }}"
        "{%- else %}{{- '[INST] ' + message['content'] + ' [/INST]' }}{%- endif %}"
        "{%- elif message['role'] == 'assistant' %}{{- ' ' + message['content'] + eos_token }}"
        "{%- endif %}{%- endfor %}"
    ),
    # Turns named by a conditional expression, with loop.last and a role rename.
    "turns": (
        "{% for message in messages %}"
        "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
        "<start_of_turn>{{ role }}\n{{ message['content'].strip() }}<end_of_turn>\n"
        "{% if loop.last and add_generation_prompt %}<start_of_turn>model\n{% endif %}"
        "{% endfor %}"
    ),
}

CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "  Name a prime.  "},
     {"role": "assistant", "content": "7"}, {"role": "user", "content": "Another?"}],
    [{"role": "user", "content": "Hi"}, {"role": "user", "content": "again"}],
]


def render(template, messages, add_generation_prompt):
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    try:
        return env.from_string(template).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                                 bos_token="<s>", eos_token="</s>"), None
    except jinja2.exceptions.TemplateError as error:
        return None, str(error)


cases = []
for name, template in TEMPLATES.items():
    for i, messages in enumerate(CONVERSATIONS):
        for generation in (True, False):
            text, error = render(template, messages, generation)
            cases.append({"name": f"{name}/{i}/{generation}", "template": template, "messages": messages,
                          "add_generation_prompt": generation, "expected": text, "error": error})
out = Path(__file__).resolve().parent.parent / "Tests/Fixtures/chat/templates.json"
out.write_text(json.dumps(cases, indent=1, ensure_ascii=False) + "\n")
print(f"wrote {len(cases)} cases to {out}")
