/* rl_cu_attn_knobs.h - which decode attention kernel runs and with which
 * of its measurement switches (rl_cu_attn_knobs.cu; each read once from the
 * environment). */
#ifndef RL_CU_ATTN_KNOBS_H
#define RL_CU_ATTN_KNOBS_H

int rl_cu_attn_kernel(void);
bool attn_bar2(void);
int attn_early(void);
bool attn_direct(void);
int attn_dmax(void);
bool attn_acqrel(void);
bool attn_tc(void);
bool attn_pair(void);

#endif
